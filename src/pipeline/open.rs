//! Opening the target a command line, a record or an environment names (or
//! the project's default), given up if the operator interrupts first.

use std::collections::BTreeSet;

use tokio::sync::watch;

use super::cancel;
use crate::config::UnknownTarget;
use crate::progress::Progress;
use crate::project::Project;
use crate::suite::Suite;
use crate::target::{self, OpenTarget, TargetError};

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Unknown(#[from] UnknownTarget),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("interrupted")]
    Interrupted,
}

/// Opens the target `name` names (default: the project's default target);
/// with `bootstrap`, the local one first bootstraps the base image of each
/// suite the project's roles build on that it has none of yet.
pub async fn open(
    project: &Project,
    name: Option<&str>,
    progress: &Progress,
    bootstrap: bool,
) -> Result<OpenTarget, OpenError> {
    let (name, settings) = project.config.target(name)?;
    let suites = if bootstrap {
        suites(project)
    } else {
        Vec::new()
    };
    Ok(target::open(name, &settings, &project.root, progress, &suites).await?)
}

/// The suites the project's roles build on, each once.
fn suites(project: &Project) -> Vec<Suite> {
    let used: BTreeSet<Suite> = project
        .recipes
        .keys()
        .map(|role| crate::role::suite(project, role))
        .collect();
    used.into_iter().collect()
}

/// [`open`], given up with [`OpenError::Interrupted`] if the operator
/// interrupts first (dropping it stops a base bootstrap's processes).
pub async fn open_unless_interrupted(
    project: &Project,
    name: Option<&str>,
    progress: &Progress,
    bootstrap: bool,
    cancel: &watch::Receiver<bool>,
) -> Result<OpenTarget, OpenError> {
    cancel::unless_interrupted(cancel, open(project, name, progress, bootstrap))
        .await
        .ok_or(OpenError::Interrupted)?
}
