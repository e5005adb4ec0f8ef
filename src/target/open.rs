//! Opening a configured target, with the identity of the base image that
//! roles without a parent start from.

use std::path::Path;

use crate::config::{Accel, ProxmoxSettings, TargetSettings};
use crate::progress::Progress;
use crate::target::local::base::{self, BootstrapOptions};
use crate::target::local::{AccelMode, LocalTarget, base_meta};
use crate::target::proxmox::ProxmoxTarget;
use crate::target::{Target, TargetError};

/// A target opened for one command: its name in oxbake.toml, the target
/// itself and the base identity it reports.
pub struct OpenTarget {
    pub name: String,
    pub target: Box<dyn Target>,
    /// Recorded as the parent of root roles and hashed into their inputs.
    pub base_identity: String,
}

/// The base identity without opening anything (for `oxbake inputs`).
pub async fn base_identity(settings: &TargetSettings) -> Result<String, TargetError> {
    Ok(match settings {
        TargetSettings::Local(_) => local_base_identity().await?,
        TargetSettings::Proxmox(p) => format!("proxmox:{}#{}", p.endpoint, p.base_template),
    })
}

/// Opens the target `name` configured by `settings`; paths in the settings
/// are relative to `project_root`. The local one bootstraps its base image
/// first when there is none yet and `bootstrap` is set.
pub async fn open(
    name: String,
    settings: &TargetSettings,
    project_root: &Path,
    progress: &Progress,
    bootstrap: bool,
) -> Result<OpenTarget, TargetError> {
    match settings {
        TargetSettings::Local(local) => {
            let cache = base::default_cache_dir();
            let mut image = base_meta::current(&cache).await?;
            if image.is_none() && bootstrap {
                progress.info("no base image yet: bootstrapping one (oxbake base bootstrap)");
                let opts = BootstrapOptions::new(cache.clone());
                image = Some(base::bootstrap(&opts, progress).await?);
            }
            let base_identity = local_base_identity().await?;
            let target = LocalTarget::new(
                project_root,
                image.map(|i| i.path),
                accel_mode(local.accel),
                progress.clone(),
            )
            .with_accel_cache(cache);
            Ok(OpenTarget {
                name,
                target: Box::new(target),
                base_identity,
            })
        }
        TargetSettings::Proxmox(pve) => {
            let target = open_proxmox(pve, project_root, progress)?;
            let base_identity = base_identity(settings).await?;
            Ok(OpenTarget {
                name,
                target: Box::new(target),
                base_identity,
            })
        }
    }
}

/// The Proxmox target `settings` describe, as such (for what only it does,
/// such as `oxbake publish`); paths in the settings are relative to
/// `project_root`.
pub fn open_proxmox(
    settings: &ProxmoxSettings,
    project_root: &Path,
    progress: &Progress,
) -> Result<ProxmoxTarget, TargetError> {
    let mut pve = settings.clone();
    // A CA file is named relative to the project, like every path.
    if let Some(ca) = &pve.ca_file {
        pve.ca_file = Some(project_root.join(ca).to_string_lossy().into_owned());
    }
    Ok(ProxmoxTarget::from_settings(&pve, progress.clone())?)
}

fn accel_mode(accel: Accel) -> AccelMode {
    match accel {
        Accel::Auto => AccelMode::Auto,
        Accel::Kvm => AccelMode::Kvm,
        Accel::Tcg => AccelMode::Tcg,
    }
}

/// `local:` and the current base image's file name (`debian-12-<recipe hash>` or
/// `imported-<sha256>`), or what `oxbake base bootstrap` would make.
async fn local_base_identity() -> Result<String, TargetError> {
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
