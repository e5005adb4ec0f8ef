//! The integration tests: one binary, one module per area.

mod aptrepo;
mod check;
mod inputs;
mod local_target;
mod registry;
mod roles;
mod support;
