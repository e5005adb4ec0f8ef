//! `oxbake gc`: builder and smoke VMs whose run has ended (the process
//! died, was killed, or the machine restarted mid-build) are removed.
//! Deployed VMs are never touched, nor is a VM whose labels cannot be read:
//! it is reported as unknown, with where its labels should be. Networks the
//! target made for environments (local: a segment's switch) that no VM uses
//! any more go too ([`networks`]), and so do disk images a run uploaded and
//! left behind (proxmox: `oxbake publish`'s import volumes, [`uploads`]),
//! and the project's work folders of processes that ended ([`scratch`]).

use serde::Serialize;

use super::runs;
use crate::progress::Progress;
use crate::target::{NetworkLeftover, Target, TargetError, UploadLeftover, VmKind};

/// One leftover and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct Leftover {
    pub name: String,
    pub run_id: Option<String>,
    pub role: Option<String>,
    pub kind: Option<VmKind>,
    pub removed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the VM's origin is unknown (its labels cannot be read); such a
    /// VM is left as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

/// Finds the leftovers and, unless `dry_run`, removes them.
pub async fn collect(
    target: &dyn Target,
    runs_dir: &std::path::Path,
    dry_run: bool,
    progress: &Progress,
) -> Result<Vec<Leftover>, TargetError> {
    let mut found = Vec::new();
    for vm in target.list_vms().await? {
        let labels = vm.labels.get();
        let leftover = match labels {
            Some(labels) if labels.kind == VmKind::Deployed => false,
            Some(labels) => !runs::is_alive(runs_dir, &labels.run_id),
            None => true,
        };
        if !leftover {
            continue;
        }
        let mut entry = Leftover {
            name: vm.handle.name.clone(),
            run_id: labels.map(|l| l.run_id.clone()),
            role: labels.map(|l| l.role.clone()),
            kind: labels.map(|l| l.kind),
            removed: false,
            error: None,
            unknown: vm.labels.problem(),
        };
        if let Some(why) = &entry.unknown {
            progress.warn(format!(
                "gc: leaving `{}` alone: its labels are unknown ({why})",
                vm.handle.name
            ));
            found.push(entry);
            continue;
        }
        if !dry_run {
            match target.destroy(&vm.handle).await {
                Ok(()) => {
                    entry.removed = true;
                    progress.info(format!("gc: removed `{}`", vm.handle.name));
                }
                Err(e) => entry.error = Some(e.to_string()),
            }
        }
        found.push(entry);
    }
    Ok(found)
}

/// Disk images uploaded by runs that ended (a killed `oxbake publish`)
/// and, unless `dry_run`, removed.
pub async fn uploads(
    target: &dyn Target,
    runs_dir: &std::path::Path,
    dry_run: bool,
    progress: &Progress,
) -> Result<Vec<UploadLeftover>, TargetError> {
    let ended = |run: &str| !runs::is_alive(runs_dir, run);
    let found = target.sweep_uploads(&ended, dry_run).await?;
    for upload in &found {
        match (&upload.error, upload.removed) {
            (Some(e), _) => progress.warn(format!("gc: upload `{}` stays: {e}", upload.name)),
            (None, true) => progress.info(format!("gc: removed upload `{}`", upload.name)),
            (None, false) => {}
        }
    }
    Ok(found)
}

/// The target's networks no VM uses and, unless `dry_run`, those it proves
/// its own removed (after [`collect`]: the VMs removed there no longer use
/// them).
pub async fn networks(
    target: &dyn Target,
    dry_run: bool,
    progress: &Progress,
) -> Result<Vec<NetworkLeftover>, TargetError> {
    let found = target.sweep_networks(dry_run).await?;
    for net in &found {
        if let Some(why) = &net.unknown {
            progress.warn(format!("gc: leaving network `{}` alone: {why}", net.name));
        } else if let Some(e) = &net.error {
            progress.warn(format!("gc: network `{}` stays: {e}", net.name));
        } else if net.removed {
            progress.info(format!("gc: removed network `{}`", net.name));
        }
    }
    Ok(found)
}

/// The work folders in `.oxbake/scratch/` of processes that ended (a
/// killed `oxbake publish` or `inspect`) and, unless `dry_run`, removed.
pub fn scratch(
    dir: &std::path::Path,
    dry_run: bool,
    progress: &Progress,
) -> std::io::Result<Vec<crate::scratch::Leftover>> {
    let found = crate::scratch::sweep(dir, dry_run)?;
    for folder in &found {
        match (&folder.error, folder.removed) {
            (Some(e), _) => progress.warn(format!("gc: scratch `{}` stays: {e}", folder.name)),
            (None, true) => progress.info(format!(
                "gc: removed scratch `{}` ({} bytes)",
                folder.name, folder.bytes
            )),
            (None, false) => {}
        }
    }
    Ok(found)
}
