//! Cloud-init for Proxmox VMs: a NoCloud seed ISO (made by
//! [`write_seed_iso`]) uploaded as `iso` content to `iso_storage` and
//! attached as the CD-ROM `ide2`. No snippet storage and no SSH to the node
//! are needed.

use super::vm::{VmConfig, VmRef};
use super::vmconfig::ConfigChange;
use super::{ProxmoxTarget, vm_ref};
use crate::target::cloudinit::write_seed_iso;
use crate::target::{CloudInit, TargetError, VmHandle};

/// The drive the seed ISO is attached as.
pub(super) const SEED_DRIVE: &str = "ide2";

pub(super) fn seed_file(vm: &VmRef) -> String {
    format!("oxbake-seed-{}.iso", vm.vmid)
}

fn seed_volid(t: &ProxmoxTarget, vm: &VmRef) -> String {
    format!("{}:iso/{}", t.settings.iso_storage, seed_file(vm))
}

/// Drives holding Proxmox's own cloud-init image (`…:vm-N-cloudinit`).
pub(super) fn proxmox_cloudinit_drives(config: &VmConfig) -> Vec<String> {
    config
        .0
        .keys()
        .filter(|k| {
            config
                .get(k)
                .is_some_and(|v| v.contains("cloudinit") && v.contains("media=cdrom"))
        })
        .cloned()
        .collect()
}

pub(super) async fn set_cloud_init(
    t: &ProxmoxTarget,
    h: &VmHandle,
    data: &CloudInit,
) -> Result<(), TargetError> {
    let vm = vm_ref(h)?;
    // The ISO holds user-data (maybe secrets): it lives in a 0700 folder.
    let dir = tempfile::Builder::new()
        .prefix("oxbake-pve-seed-")
        .tempdir()
        .map_err(|e| TargetError::io(std::env::temp_dir(), e))?;
    let iso = dir.path().join(seed_file(&vm));
    write_seed_iso(data, &iso).await?;
    let bytes = tokio::fs::read(&iso)
        .await
        .map_err(|e| TargetError::io(&iso, e))?;
    remove(t, &vm).await?;
    let storage = &t.settings.iso_storage;
    let answer = t
        .client
        .upload_iso(&vm.node, storage, &seed_file(&vm), &bytes)
        .await?;
    t.client.finish(answer, t.task_timeout).await?;
    let change = ConfigChange {
        drives: vec![(
            SEED_DRIVE.to_string(),
            format!("{},media=cdrom", seed_volid(t, &vm)),
        )],
        ..Default::default()
    };
    let attached = match t.client.set_config(&vm, change.to_form()).await {
        Ok(answer) => t.client.finish(answer, t.task_timeout).await,
        Err(e) => Err(e),
    };
    if let Err(e) = attached {
        let _ = remove(t, &vm).await;
        return Err(e.into());
    }
    Ok(())
}

/// Ejects the seed ISO (a deployed VM has read it) and deletes it.
pub(super) async fn eject(t: &ProxmoxTarget, h: &VmHandle) -> Result<(), TargetError> {
    let vm = vm_ref(h)?;
    let change = ConfigChange {
        drives: vec![(SEED_DRIVE.to_string(), "none,media=cdrom".to_string())],
        ..Default::default()
    };
    let answer = t.client.set_config(&vm, change.to_form()).await?;
    t.client.finish(answer, t.task_timeout).await?;
    remove(t, &vm).await
}

/// Removes the VM's seed ISO from the storage; a missing one is fine.
pub(super) async fn remove(t: &ProxmoxTarget, vm: &VmRef) -> Result<(), TargetError> {
    let storage = &t.settings.iso_storage;
    let volid = seed_volid(t, vm);
    let present = t.client.list_volumes(&vm.node, storage, "iso").await?;
    if !present.contains(&volid) {
        return Ok(());
    }
    match t.client.delete_volume(&vm.node, storage, &volid).await {
        Ok(answer) => Ok(t.client.finish(answer, t.task_timeout).await?),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Whether a drive option is this VM's seed ISO.
pub(super) fn is_seed(value: &str, vm: &VmRef) -> bool {
    value.contains(&format!("iso/{}", seed_file(vm)))
}
