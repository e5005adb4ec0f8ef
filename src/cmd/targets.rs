//! Opening the target a command names (or the project's default), with the
//! identity of the base image that roles without a parent start from.

use tokio::sync::watch;

use crate::config::{Accel, LocalSettings, TargetSettings};
use crate::error::Error;
use crate::pipeline::cancel;
use crate::progress::Progress;
use crate::project::Project;
use crate::target::local::base::{self, BootstrapOptions};
use crate::target::local::{AccelMode, LocalTarget, base_meta};
use crate::target::proxmox::ProxmoxTarget;
use crate::target::{Target, TargetError};

pub struct OpenTarget {
    pub name: String,
    pub target: Box<dyn Target>,
    /// Recorded as the parent of root roles and hashed into their inputs.
    pub base_identity: String,
}

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

/// The base identity without opening anything (for `oxbake inputs`).
pub async fn base_identity(settings: &TargetSettings) -> Result<String, Error> {
    Ok(match settings {
        TargetSettings::Local(_) => local_base_identity().await?,
        TargetSettings::Proxmox(p) => format!("proxmox:{}#{}", p.endpoint, p.base_template),
    })
}

/// Opens the target; the local one bootstraps its base image first when
/// there is none yet and `bootstrap` is set.
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

pub async fn open(
    project: &Project,
    name: Option<&str>,
    progress: &Progress,
    bootstrap: bool,
) -> Result<OpenTarget, Error> {
    let (name, settings) = settings(project, name)?;
    match &settings {
        TargetSettings::Local(local) => {
            let cache = base::default_cache_dir();
            let mut image = base_meta::current(&cache).await?;
            if image.is_none() && bootstrap {
                progress.info("no base image yet: bootstrapping one (oxbake base bootstrap)");
                image = Some(base::bootstrap(&BootstrapOptions::new(cache), progress).await?);
            }
            let base_identity = local_base_identity().await?;
            let accel = match local.accel {
                Accel::Auto => AccelMode::Auto,
                Accel::Kvm => AccelMode::Kvm,
                Accel::Tcg => AccelMode::Tcg,
            };
            let target = LocalTarget::new(
                &project.root,
                image.map(|i| i.path),
                accel,
                progress.clone(),
            );
            Ok(OpenTarget {
                name,
                target: Box::new(target),
                base_identity,
            })
        }
        TargetSettings::Proxmox(pve) => {
            let mut pve = pve.clone();
            // A CA file is named relative to the project, like every path.
            if let Some(ca) = &pve.ca_file {
                pve.ca_file = Some(project.root.join(ca).to_string_lossy().into_owned());
            }
            let target =
                ProxmoxTarget::from_settings(&pve, progress.clone()).map_err(TargetError::from)?;
            let base_identity = base_identity(&settings).await?;
            Ok(OpenTarget {
                name,
                target: Box::new(target),
                base_identity,
            })
        }
    }
}

/// `local:` and the current base image's file name (`debian-12-<recipe hash>` or
/// `imported-<sha256>`), or what `oxbake base bootstrap` would make.
async fn local_base_identity() -> Result<String, Error> {
    let cache = base::default_cache_dir();
    let stem = base_meta::current(&cache).await?.and_then(|image| {
        image
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
    });
    let stem = stem.unwrap_or_else(|| {
        let hash = BootstrapOptions::new(cache).recipe_hash();
        format!("debian-12-{}", &hash[..16])
    });
    Ok(format!("local:{stem}"))
}
