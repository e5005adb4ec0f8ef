//! Which target a command line names (or the project's default); opening it
//! is the target layer's ([`crate::target::open`]).

use tokio::sync::watch;

use crate::config::{LocalSettings, TargetSettings};
use crate::error::Error;
use crate::pipeline::cancel;
use crate::progress::Progress;
use crate::project::Project;
use crate::target::{self, OpenTarget};

/// Resolves `name` (default: the project's default target).
pub fn settings(project: &Project, name: Option<&str>) -> Result<(String, TargetSettings), Error> {
    let name = name
        .unwrap_or(&project.config.project.default_target)
        .to_owned();
    match project.config.targets.get(&name) {
        Some(settings) => Ok((name, settings.clone())),
        None if name == "local" => Ok((name, TargetSettings::Local(LocalSettings::default()))),
        None => {
            let known: Vec<String> = project
                .config
                .targets
                .keys()
                .map(|k| format!("`{k}`"))
                .collect();
            Err(Error::Usage(format!(
                "unknown target `{name}`; oxbake.toml defines {}",
                known.join(", ")
            )))
        }
    }
}

/// [`open`], given up with [`Error::Interrupted`] if the operator
/// interrupts first (dropping it stops a base bootstrap's processes).
pub async fn open_unless_interrupted(
    project: &Project,
    name: Option<&str>,
    progress: &Progress,
    bootstrap: bool,
    cancel: &watch::Receiver<bool>,
) -> Result<OpenTarget, Error> {
    cancel::unless_interrupted(cancel, open(project, name, progress, bootstrap))
        .await
        .ok_or(Error::Interrupted)?
}

/// Opens the target `name` names (default: the project's default target);
/// the local one bootstraps its base image first when there is none yet and
/// `bootstrap` is set.
pub async fn open(
    project: &Project,
    name: Option<&str>,
    progress: &Progress,
    bootstrap: bool,
) -> Result<OpenTarget, Error> {
    let (name, settings) = settings(project, name)?;
    Ok(target::open(name, &settings, &project.root, progress, bootstrap).await?)
}
