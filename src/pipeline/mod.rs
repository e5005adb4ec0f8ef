//! The pipeline: build (bake roles into templates), written once against
//! the [`Target`](crate::target::Target) trait and the guest module.

pub mod artifact;
pub mod build;
pub mod cancel;
mod channel_error;
pub mod channel_tags;
mod checks;
pub mod context;
pub mod deploy;
pub mod drift;
mod error;
pub mod gc;
pub mod hygiene;
pub mod inspect;
pub mod jobs;
mod lineage;
mod log;
pub mod nightly;
pub mod open;
pub mod ownership;
pub mod promote;
pub mod prune;
pub mod prune_copies;
pub mod prune_plan;
pub mod publish;
pub mod revoke;
pub mod role_lock;
pub mod rollback;
pub mod runs;
pub mod smoke;
pub mod steps;
pub mod vm;

pub use build::{BuildOptions, BuildOutcome, build};
pub use channel_error::PromoteError;
pub use context::{Context, WorkDirs};
pub use error::BuildError;
pub use lineage::RegistryLineage;
pub use promote::{PromoteOutcome, PromoteRequest, promote};
pub use prune::{PruneError, PruneReport, prune};
