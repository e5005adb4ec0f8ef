//! Creating a VM: allocate a VMID, clone, configure, resize. A create that
//! fails removes the VM it made.

use std::collections::BTreeSet;

use super::destroy::cleanup;
use super::labels;
use super::vm::{CloneRequest, VmConfig, VmRef};
use super::vmconfig::ConfigChange;
use super::{ProxmoxTarget, PveError, handle, seed, unanswered, vmid};
use crate::target::{Artifact, Source, TargetError, VmHandle, VmSpec, validate_name};

/// How often a clone is retried with a new id after "already exists".
const ID_ATTEMPTS: usize = 8;

pub(super) async fn create(t: &ProxmoxTarget, spec: &VmSpec) -> Result<VmHandle, TargetError> {
    validate_name(&spec.name)?;
    let src = source(t, &spec.source).await?;
    let (vm, _reservation) = clone_fresh(t, &src, spec).await?;
    if let Err(e) = configure(t, &vm, spec).await {
        cleanup(t, &vm).await;
        return Err(e);
    }
    Ok(handle(&spec.name, &vm))
}

/// The template to clone: the configured base template, found on whichever
/// node holds it, or an oxbake template.
async fn source(t: &ProxmoxTarget, source: &Source) -> Result<VmRef, TargetError> {
    match source {
        Source::Base(suite) => {
            let vmid = t
                .settings
                .base_template_of(*suite)
                .ok_or(TargetError::NoBaseTemplate(*suite))?;
            let found = t
                .client
                .vm_resources()
                .await?
                .into_iter()
                .find(|r| r.vmid == u64::from(vmid));
            match found {
                Some(r) => Ok(VmRef { node: r.node, vmid }),
                None => Err(TargetError::TemplateNotFound(format!(
                    "base template {vmid}"
                ))),
            }
        }
        Source::Template(tpl) => match &tpl.artifact {
            Artifact::Proxmox { node, vmid, .. } => Ok(VmRef {
                node: node.clone(),
                vmid: *vmid,
            }),
            Artifact::Local { .. } => Err(TargetError::ForeignArtifact {
                name: tpl.name.clone(),
            }),
        },
    }
}

async fn clone_fresh(
    t: &ProxmoxTarget,
    src: &VmRef,
    spec: &VmSpec,
) -> Result<(VmRef, vmid::Reservation), TargetError> {
    // The clone call goes to the source's node; `target` puts the new VM
    // on another one (Proxmox allows it for shared storage only), and every
    // later call addresses the VM there.
    let node = spec.node.clone().unwrap_or_else(|| t.node().to_string());
    let full = t.settings.full_clone || node != src.node;
    // Ids that answered "already exists" although the listing missed them.
    let mut taken = BTreeSet::new();
    for _ in 0..ID_ATTEMPTS {
        let mut used: BTreeSet<u32> = t
            .client
            .vm_resources()
            .await?
            .iter()
            .filter_map(|r| u32::try_from(r.vmid).ok())
            .collect();
        used.extend(&taken);
        let held = vmid::reserve(&t.reserved, &used, t.settings.vmid_range)?;
        let req = CloneRequest {
            newid: held.vmid,
            name: Some(spec.name.clone()),
            full,
            target: (node != src.node).then(|| node.clone()),
            storage: full.then(|| t.settings.storage.clone()),
            pool: t.settings.pool.clone(),
            // The labels from the start: a clone whose request goes
            // unanswered may appear later, and is found by them.
            description: Some(labels::vm_description(&spec.labels)),
        };
        let vm = VmRef {
            node: node.clone(),
            vmid: held.vmid,
        };
        match t.client.clone_vm(src, &req).await {
            Ok(upid) => {
                if let Err(e) = t.client.finish(Some(upid), t.task_timeout).await {
                    cleanup(t, &vm).await;
                    return Err(e.into());
                }
                return Ok((vm, held));
            }
            // The clone may have started: what its answer holds is no task.
            Err(e @ PveError::InvalidUpid(_)) => {
                cleanup(t, &vm).await;
                return Err(e.into());
            }
            Err(e) if e.is_no_answer() => {
                unanswered::clone(t, &vm, &spec.name).await;
                return Err(e.into());
            }
            Err(e) if e.message().contains("already exists") => {
                taken.insert(vm.vmid);
                t.progress.info(format!(
                    "vmid {} was taken meanwhile; trying the next",
                    vm.vmid
                ));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let [lo, hi] = t.settings.vmid_range;
    Err(PveError::NoFreeVmid { lo, hi }.into())
}

async fn configure(t: &ProxmoxTarget, vm: &VmRef, spec: &VmSpec) -> Result<(), TargetError> {
    let config = t.client.vm_config(vm).await?;
    let change = ConfigChange {
        cores: Some(spec.cores),
        memory_mib: Some(spec.memory_mib),
        net0: Some(net0(&config, &t.settings.bridge)),
        agent: Some(true),
        tags: Some(labels::vm_tags(&spec.labels)),
        description: Some(labels::vm_description(&spec.labels)),
        // The seed ISO is the one cloud-init source; Proxmox's own drive
        // would be a second `cidata`.
        delete: seed::proxmox_cloudinit_drives(&config),
        drives: discard_on(&config).into_iter().collect(),
        ..Default::default()
    };
    let answer = t.client.set_config(vm, change.to_form()).await?;
    t.client.finish(answer, t.task_timeout).await?;
    if let Some(gib) = spec.disk_gib {
        grow_disk(t, vm, &config, gib).await?;
    }
    Ok(())
}

/// `net0` on the configured bridge, keeping the model and the MAC the clone got.
fn net0(config: &VmConfig, bridge: &str) -> String {
    let model = config
        .get("net0")
        .and_then(|n| {
            n.split(',')
                .next()
                .map(|first| first.split('=').next().unwrap_or("").to_string())
        })
        .filter(|m| !m.is_empty() && m != "bridge")
        .unwrap_or_else(|| "virtio".to_string());
    match config.net0_mac() {
        Some(mac) => format!("{model}={mac},bridge={bridge}"),
        None => format!("{model},bridge={bridge}"),
    }
}

/// The first disk with `discard=on`, where it lacks it: the bake's trim
/// then frees the blocks on the storage (thin LVM, ZFS, qcow2 files keep
/// only what the template's files hold).
fn discard_on(config: &VmConfig) -> Option<(String, String)> {
    let (key, value) = first_disk(config)?;
    let options = value.split(',').skip(1);
    if options.clone().any(|o| o == "discard=on") {
        return None;
    }
    let kept: Vec<&str> = std::iter::once(value.split(',').next().unwrap_or(""))
        .chain(options.filter(|o| !o.starts_with("discard=")))
        .collect();
    Some((key, format!("{},discard=on", kept.join(","))))
}

/// The boot disk: scsi0, virtio0 or sata0, else the first disk.
fn first_disk(config: &VmConfig) -> Option<(String, String)> {
    let mut disks = config.disks();
    disks.sort();
    let preferred = ["scsi0", "virtio0", "sata0"];
    preferred
        .iter()
        .find_map(|p| disks.iter().find(|(k, _)| k == p))
        .or(disks.first())
        .cloned()
}

/// Grows the first disk to `gib`; never shrinks.
async fn grow_disk(
    t: &ProxmoxTarget,
    vm: &VmRef,
    config: &VmConfig,
    gib: u32,
) -> Result<(), TargetError> {
    let Some((key, value)) = first_disk(config) else {
        return Ok(());
    };
    if size_gib(&value).is_some_and(|now| now >= f64::from(gib)) {
        return Ok(());
    }
    let answer = t.client.resize(vm, &key, &format!("{gib}G")).await?;
    t.client.finish(answer, t.task_timeout).await?;
    Ok(())
}

/// The `size=` of a disk option in GiB.
fn size_gib(disk: &str) -> Option<f64> {
    let size = disk.split(',').find_map(|p| p.strip_prefix("size="))?;
    let (num, unit) = size.split_at(
        size.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(size.len()),
    );
    let n: f64 = num.parse().ok()?;
    let factor = match unit {
        "T" => 1024.0,
        "G" | "" => 1.0,
        "M" => 1.0 / 1024.0,
        "K" => 1.0 / (1024.0 * 1024.0),
        _ => return None,
    };
    Some(n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_disk_gets_discard_on_once() {
        let config: VmConfig = serde_json::from_value(serde_json::json!({
            "scsi0": "local-lvm:vm-101-disk-0,discard=ignore,size=8G",
            "ide2": "local:iso/seed.iso,media=cdrom",
        }))
        .unwrap();
        assert_eq!(
            discard_on(&config),
            Some((
                "scsi0".to_string(),
                "local-lvm:vm-101-disk-0,size=8G,discard=on".to_string()
            ))
        );
        let on: VmConfig = serde_json::from_value(serde_json::json!({
            "virtio0": "local-lvm:vm-101-disk-0,discard=on,size=8G",
        }))
        .unwrap();
        assert_eq!(discard_on(&on), None);
    }

    #[test]
    fn disk_sizes_are_read_in_gib() {
        assert_eq!(size_gib("local-lvm:vm-1-disk-0,size=8G"), Some(8.0));
        assert_eq!(size_gib("x,size=512M,ssd=1"), Some(0.5));
        assert_eq!(size_gib("x,size=1T"), Some(1024.0));
        assert_eq!(size_gib("x"), None);
    }
}
