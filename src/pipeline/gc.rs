//! `oxbake gc`: builder and smoke VMs whose run has ended (the process
//! died, was killed, or the machine restarted mid-build) are removed.
//! Deployed VMs are never touched.

use serde::Serialize;

use super::runs;
use crate::progress::Progress;
use crate::target::{Target, TargetError, VmKind};

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
        let leftover = match &vm.labels {
            Some(labels) if labels.kind == VmKind::Deployed => false,
            Some(labels) => !runs::is_alive(runs_dir, &labels.run_id),
            // Unreadable labels: whatever made it is not a live run of ours.
            None => true,
        };
        if !leftover {
            continue;
        }
        let mut entry = Leftover {
            name: vm.handle.name.clone(),
            run_id: vm.labels.as_ref().map(|l| l.run_id.clone()),
            role: vm.labels.as_ref().map(|l| l.role.clone()),
            kind: vm.labels.as_ref().map(|l| l.kind),
            removed: false,
            error: None,
        };
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
