//! The integration test binary: one module per feature.

mod support;

mod local_target;
