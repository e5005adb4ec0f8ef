//! Why a build failed. Every message names the role and, where one was
//! running, the step.

use crate::guest::GuestError;
use crate::registry::RegistryError;
use crate::role::inputs::InputsError;
use crate::secrets::SecretsError;
use crate::target::TargetError;

use super::steps::StepError;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("role `{role}`: {what}")]
    Target {
        role: String,
        what: &'static str,
        #[source]
        source: Box<TargetError>,
    },
    #[error("role `{role}`: {what}")]
    Guest {
        role: String,
        what: &'static str,
        #[source]
        source: Box<GuestError>,
    },
    #[error("role `{role}`: step {index}/{total} `{step}` failed")]
    Step {
        role: String,
        index: usize,
        total: usize,
        step: String,
        #[source]
        source: Box<StepError>,
    },
    #[error("role `{role}`: {failed} of {total} checks failed: {names}")]
    Checks {
        role: String,
        failed: usize,
        total: usize,
        names: String,
    },
    #[error("role `{role}`: parent `{parent}` has no image built from its current inputs")]
    ParentMissing { role: String, parent: String },
    #[error("role `{role}`: cannot write the build log `{path}`")]
    Log {
        role: String,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("role `{role}`: cannot take the build lock `{path}`")]
    Lock {
        role: String,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Inputs(#[from] InputsError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("role `{role}`: {why}")]
    Clean { role: String, why: String },
    #[error("role `{role}`: template `{template}` is not clean: {}", .findings.iter().map(|f| format!("{}: {}", f.path, f.what)).collect::<Vec<_>>().join("; "))]
    NotClean {
        role: String,
        template: String,
        findings: Vec<super::inspect::Finding>,
    },
    #[error("interrupted")]
    Interrupted,
}

impl BuildError {
    pub fn is_interrupted(&self) -> bool {
        matches!(self, BuildError::Interrupted)
    }
}
