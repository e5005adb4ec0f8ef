//! A clone request that went unanswered. Proxmox may still have carried it
//! out: its clone handler writes the new VM's config (locked `clone`)
//! before it answers, so a slow or lost answer can leave a VM oxbake never
//! heard of. The VMID and the name were oxbake's choice, so the VM can be
//! looked for; when it shows up it is left to finish its clone task and
//! removed. One that shows up later still carries oxbake's labels in its
//! description (they are part of the clone request): the listing finds it
//! by those, so the build's clean-up and `oxbake gc` remove it.

use std::time::Duration;

use tokio::time::sleep;

use super::destroy::remove_vm;
use super::vm::{VmConfig, VmRef};
use super::{ProxmoxTarget, PveError};
use crate::target::deadline::Deadline;

/// How long a VM of an unanswered clone is looked for: the request
/// timeout, within these bounds (one that appears later is found by its
/// labels).
const MIN_LOOK: Duration = Duration::from_secs(5);
const MAX_LOOK: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(500);

/// Looks for the VM an unanswered clone of `name` to `vm` may have made;
/// removes it if it is there. Never fails: the caller reports the clone's
/// own error.
pub(super) async fn clone(t: &ProxmoxTarget, vm: &VmRef, name: &str) {
    let window = t.client.request_timeout().clamp(MIN_LOOK, MAX_LOOK);
    t.progress.warn(format!(
        "vm `{name}`: the clone request went unanswered; looking for vm {} on `{}` \
         (up to {}s) in case proxmox made it anyway",
        vm.vmid,
        vm.node,
        window.as_secs()
    ));
    let found = tokio::time::timeout(window, appeared(t, vm)).await;
    let why = match found {
        Ok(config) if config.get("name").as_deref() == Some(name) => None,
        Ok(_) => Some(format!("vm {} holds another vm; leaving it alone", vm.vmid)),
        Err(_) => Some(format!(
            "no vm {} appeared; should it appear later, the clean-up or `oxbake gc` \
             finds it by the labels in its description",
            vm.vmid
        )),
    };
    if let Some(why) = why {
        t.progress.info(format!("vm `{name}`: {why}"));
        return;
    }
    if let Err(e) = unlocked(t, vm).await {
        t.progress.warn(format!(
            "vm `{name}`: the clone task of vm {} did not end: {e}",
            vm.vmid
        ));
    }
    // No seed ISO exists yet: removing the VM is all there is to do.
    match remove_vm(t, vm).await {
        Ok(()) => t.progress.info(format!(
            "vm `{name}`: proxmox made vm {} after all; removed it",
            vm.vmid
        )),
        Err(e) => t.progress.warn(format!(
            "vm `{name}`: proxmox made vm {} after all and it could not be removed: {e}; \
             `oxbake gc` removes it later",
            vm.vmid
        )),
    }
}

/// Polls until the VMID holds a VM, and returns its config.
async fn appeared(t: &ProxmoxTarget, vm: &VmRef) -> VmConfig {
    loop {
        // Not there yet, or the API is still struggling: ask again until
        // the caller's window ends.
        if let Ok(config) = t.client.vm_config(vm).await {
            return config;
        }
        sleep(POLL).await;
    }
}

/// Waits until the VM's clone lock is gone (its clone task ended), within
/// `task_timeout`, config requests included.
async fn unlocked(t: &ProxmoxTarget, vm: &VmRef) -> Result<(), PveError> {
    let what = format!("the clone task of vm {}", vm.vmid);
    let deadline = Deadline::new(what.clone(), t.task_timeout).setting("task_timeout");
    let client = t.client.until(deadline.at());
    let timed_out = |seen| PveError::TaskTimeout {
        upid: what.clone(),
        expired: deadline.ended("not ended", seen),
    };
    loop {
        let config: VmConfig = match deadline.run(client.vm_config(vm)).await {
            Some(Ok(config)) => config,
            Some(Err(e)) if !(e.went_unanswered() && deadline.passed()) => return Err(e),
            Some(Err(_)) | None => {
                return Err(PveError::TaskTimeout {
                    upid: what.clone(),
                    expired: deadline.expired(None),
                });
            }
        };
        let Some(lock) = config.get("lock") else {
            return Ok(());
        };
        if deadline.passed() {
            return Err(timed_out(Some(format!("lock `{lock}`"))));
        }
        deadline.sleep(POLL).await;
    }
}
