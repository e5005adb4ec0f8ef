//! The integration tests: one binary, one module per area.

mod check;
mod inputs;
mod local_target;
mod proxmox;
mod registry;
mod support;
