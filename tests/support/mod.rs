//! Harnesses shared by the integration tests.

pub mod project;
pub mod pve_sim;
