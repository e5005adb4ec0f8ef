//! Destroying VMs: stop if running, delete with purge, remove the seed ISO.

use super::labels::{OXBAKE_TAG, labels_from_description};
use super::vm::VmRef;
use super::{ProxmoxTarget, seed, vm_ref};
use crate::target::{TargetError, VmHandle};

/// Stops and removes a VM and its seed ISO. A VM that is gone, or whose id
/// now belongs to a VM oxbake did not make, is left alone.
pub(super) async fn destroy(t: &ProxmoxTarget, h: &VmHandle) -> Result<(), TargetError> {
    let vm = vm_ref(h)?;
    let config = match t.client.vm_config(&vm).await {
        Ok(c) => c,
        Err(e) if e.is_not_found() => return seed::remove(t, &vm).await,
        Err(e) => return Err(e.into()),
    };
    // Tagged, or (a clone oxbake never got to tag) described by oxbake.
    let marked = config
        .get("tags")
        .is_some_and(|tags| super::split_tags(&tags).iter().any(|t| t == OXBAKE_TAG))
        || config
            .get("description")
            .as_deref()
            .and_then(labels_from_description)
            .is_some();
    let ours = config.get("name").as_deref() == Some(h.name.as_str()) && marked;
    if !ours {
        t.progress.warn(format!(
            "vm `{}`: id {} now holds another vm; leaving it alone",
            h.name, h.id
        ));
        return Ok(());
    }
    remove_vm(t, &vm).await?;
    seed::remove(t, &vm).await
}

pub(super) async fn remove_vm(t: &ProxmoxTarget, vm: &VmRef) -> Result<(), TargetError> {
    let status = match t.client.vm_status(vm).await {
        Ok(s) => s,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if status.is_running() {
        let upid = t.client.stop_vm(vm, true).await?;
        t.client.finish(Some(upid), t.task_timeout).await?;
    }
    match t.client.destroy_vm(vm).await {
        Ok(upid) => Ok(t.client.finish(Some(upid), t.task_timeout).await?),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Best-effort removal of a VM this target just made; failures are reported
/// as warnings since the original error is what the caller needs.
pub(super) async fn cleanup(t: &ProxmoxTarget, vm: &VmRef) {
    if let Err(e) = remove_vm(t, vm).await {
        t.progress.warn(format!(
            "vm {} on `{}` could not be removed: {e}",
            vm.vmid, vm.node
        ));
    }
    if let Err(e) = seed::remove(t, vm).await {
        t.progress.warn(e.to_string());
    }
}
