//! Opening a configured target, with the identities of the base images that
//! roles without a parent start from.

use std::collections::BTreeMap;
use std::path::Path;

use super::bases::BaseIdentities;
use crate::config::{Accel, ProxmoxSettings, TargetSettings};
use crate::progress::Progress;
use crate::suite::Suite;
use crate::target::local::base::{self, BootstrapOptions};
use crate::target::local::{AccelMode, LocalTarget, base_meta};
use crate::target::proxmox::ProxmoxTarget;
use crate::target::{Target, TargetError};

/// A target opened for one command: its name in oxbake.toml, the target
/// itself and the identities of its base images.
pub struct OpenTarget {
    pub name: String,
    pub target: Box<dyn Target>,
    /// Recorded as the parent of root roles and hashed into their inputs.
    pub bases: BaseIdentities,
}

/// Opens the target `name` configured by `settings`; paths in the settings
/// are relative to `project_root`. The local one bootstraps the base image
/// of each suite in `bootstrap` that it has none of yet.
pub async fn open(
    name: String,
    settings: &TargetSettings,
    project_root: &Path,
    progress: &Progress,
    bootstrap: &[Suite],
) -> Result<OpenTarget, TargetError> {
    match settings {
        TargetSettings::Local(local) => {
            let cache = base::default_cache_dir();
            let mut images = BTreeMap::new();
            for suite in Suite::ALL {
                let mut image = base_meta::current(&cache, suite).await?;
                if image.is_none() && bootstrap.contains(&suite) {
                    progress.info(format!(
                        "no {suite} base image yet: bootstrapping one \
                         (oxbake base bootstrap --suite {suite})"
                    ));
                    let opts = BootstrapOptions::new(cache.clone(), suite);
                    image = Some(base::bootstrap(&opts, progress).await?);
                }
                if let Some(image) = image {
                    images.insert(suite, image.path);
                }
            }
            let bases = BaseIdentities::of_target(settings).await?;
            let target = LocalTarget::with_bases(
                project_root,
                images,
                accel_mode(local.accel),
                progress.clone(),
            )
            .with_accel_cache(cache);
            Ok(OpenTarget {
                name,
                target: Box::new(target),
                bases,
            })
        }
        TargetSettings::Proxmox(pve) => {
            let target = open_proxmox(pve, project_root, progress)?;
            let bases = BaseIdentities::of_target(settings).await?;
            Ok(OpenTarget {
                name,
                target: Box::new(target),
                bases,
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
