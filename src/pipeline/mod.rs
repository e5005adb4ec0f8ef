//! The pipeline: build (bake roles into templates), written once against
//! the [`Target`](crate::target::Target) trait and the guest module.

pub mod artifact;
pub mod build;
mod builder;
mod checks;
mod error;
pub mod gc;
pub mod hygiene;
mod lineage;
mod log;
pub mod role_lock;
pub mod runs;
pub mod smoke;
pub mod steps;

pub use build::{BuildOptions, BuildOutcome, Pipeline};
pub use error::BuildError;
pub use lineage::RegistryLineage;
