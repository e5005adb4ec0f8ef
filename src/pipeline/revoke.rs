//! `oxbake revoke ROLE VERSION --reason R`: the record is marked revoked, so
//! it can no longer be promoted or deployed, and the deployed VMs built from
//! it are listed (they keep running until replaced or destroyed).

use serde::Serialize;

use super::channel_error::PromoteError;
use crate::progress::Progress;
use crate::registry::{Registry, RegistryError, Version};
use crate::target::{Target, VmKind};

/// What a revocation found.
#[derive(Debug, Clone, Serialize)]
pub struct RevokeOutcome {
    pub role: String,
    pub version: String,
    pub reason: String,
    /// Channels that still point at the version (roll them back).
    pub channels: Vec<String>,
    /// Deployed VMs that run the version, by name.
    pub deployed: Vec<String>,
}

/// Revokes `role@version`, then lists the deployed VMs that run it. The
/// revocation is written before the target is asked, so an unreachable
/// target never delays it; a listing failure is returned after it.
pub async fn revoke(
    registry: &Registry,
    target: &dyn Target,
    role: &str,
    version: &Version,
    reason: &str,
    who: &str,
) -> Result<RevokeOutcome, PromoteError> {
    registry.revoke(role, version, reason, who)?;
    let channels = registry.channels()?.channels_of(role, version);
    let wanted = version.to_string();
    let vms = target
        .list_vms()
        .await
        .map_err(|e| PromoteError::ListVms(Box::new(e)))?;
    let mut deployed: Vec<String> = vms
        .into_iter()
        .filter(|vm| {
            vm.labels.get().is_some_and(|l| {
                l.kind == VmKind::Deployed
                    && l.role == role
                    && l.version.as_deref() == Some(wanted.as_str())
            })
        })
        .map(|vm| vm.handle.name)
        .collect();
    deployed.sort();
    Ok(RevokeOutcome {
        role: role.to_owned(),
        version: wanted,
        reason: reason.to_owned(),
        channels,
        deployed,
    })
}

/// Revokes `role@version` when its target cannot be reached: a revocation
/// must not wait for a reachable target, so it is written all the same and
/// the operator is warned that the deployed VMs running it are not listed.
pub fn revoke_unreached(
    registry: &Registry,
    role: &str,
    version: &Version,
    reason: &str,
    who: &str,
    progress: &Progress,
) -> Result<(), RegistryError> {
    registry.revoke(role, version, reason, who)?;
    progress.warn(format!(
        "revoked `{role}@{version}`, but its deployed VMs cannot be listed"
    ));
    Ok(())
}
