//! The integration tests: one binary, one module per area. Tests report
//! figures (timings) on stderr.
#![allow(clippy::print_stderr, clippy::print_stdout)]

mod accel_e2e;
mod aptcache;
mod aptrepo;
mod architecture;
mod build_e2e;
mod build_parallel;
mod build_timings;
mod channels;
mod check;
mod concurrency;
mod corpus;
mod deploy;
mod ecosystem;
mod faults;
mod guest;
mod ha_e2e;
mod hygiene_e2e;
mod inputs;
mod json_errors;
mod local_segment;
mod local_target;
mod local_trust;
mod nightly;
mod proxmox;
mod pve_e2e;
mod registry;
mod roles;
mod suites_e2e;
mod support;
mod vault;
