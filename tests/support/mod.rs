//! Harnesses shared by the integration tests.

pub mod aptrepo;
pub mod project;
