//! The integration tests: one binary, one module per feature.

mod registry;
