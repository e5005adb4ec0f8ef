//! `oxbake nightly`: for every role, ancestors first, decide whether it is up
//! to date or must be baked again (its inputs, its parent or a package
//! repository changed, or `--refresh`), bake what must be, promote each
//! role's current image to the first channel through the gates, prune, and
//! report what happened to every role.

mod plan;
mod report;
mod repos;
mod run;
mod sources;
mod steps;

pub use plan::{Decision, Planner, Reason, RoleState};
pub use report::{NightlyReport, Promotion, RoleReport, describe};
pub use repos::{RepoCheck, RepoFetcher};
pub use run::{Nightly, NightlySteps, StepFailure};
pub use sources::{AptSource, Login, StepSource, debian_sources, step_sources, uri_to_file_name};
pub use steps::TargetSteps;

use crate::registry::{Registry, RegistryError};
use crate::render::RenderError;
use crate::role::inputs::InputsError;
use crate::secrets::SecretsError;

#[derive(Debug, thiserror::Error)]
pub enum NightlyError {
    #[error("role `{role}`: repository list `{list}` cannot be fetched: {why}")]
    Fetch {
        role: String,
        list: String,
        why: String,
    },
    #[error("role `{role}`: cannot render an apt repository")]
    Render {
        role: String,
        #[source]
        source: RenderError,
    },
    #[error(transparent)]
    Inputs(#[from] InputsError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("cannot make the HTTP client for repository checks")]
    Http(#[source] reqwest::Error),
}

/// Whether any role has more than `keep` versions: prune only ever removes
/// versions past a role's newest `keep`, so otherwise it has nothing to do
/// and need not read every record (folder listings suffice).
pub fn over_retention(registry: &Registry, keep: usize) -> Result<bool, RegistryError> {
    for role in registry.roles()? {
        if registry.versions(&role)?.len() > keep {
            return Ok(true);
        }
    }
    Ok(false)
}

pub use crate::error_chain::chain;

#[cfg(test)]
mod tests;
