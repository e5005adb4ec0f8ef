//! The integration tests: one binary, one module per area.

mod check;
mod inputs;
mod registry;
mod support;
