//! Creating, seeding, listing and destroying local VMs. Starting and
//! stopping them is in [`super::power`].

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::process::Command;

use super::LocalTarget;
use super::state::{DirGuard, VmFiles, VmRecord, names_in, read_toml, write_toml};
use super::{netdev, process, qcow2, qemu, segment_use, verify};
use crate::target::cloudinit::write_seed_iso;
use crate::target::{
    Artifact, CloudInit, ManagedVm, Source, TargetError, VmHandle, VmLabels, VmNetwork, VmNics,
    VmSpec, VmState, exec, validate_name,
};

pub(super) use super::power::{shutdown, ssh_endpoint, start};

/// A stopped VM: a folder with an overlay disk on the source and `vm.toml`.
pub(super) async fn create(t: &LocalTarget, spec: &VmSpec) -> Result<VmHandle, TargetError> {
    validate_name(&spec.name)?;
    let backing = resolve_source(t, &spec.source).await?;
    let files = t.state.vm(&spec.name);
    let vms = t.state.vms();
    tokio::fs::create_dir_all(&vms)
        .await
        .map_err(|e| TargetError::io(&vms, e))?;
    match tokio::fs::create_dir(&files.dir).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(TargetError::VmExists(spec.name.clone()));
        }
        Err(e) => return Err(TargetError::io(&files.dir, e)),
    }
    let guard = DirGuard::new(files.dir.clone());
    set_mode(&files.dir, 0o700).await?;
    let name = backing_name(t, &files.dir, &backing).await?;
    create_overlay(&files.disk(), (&backing, &name), spec.disk_gib).await?;
    let record = VmRecord {
        name: spec.name.clone(),
        labels: spec.labels.clone(),
        cores: spec.cores,
        memory_mib: spec.memory_mib,
        mac: match &spec.network {
            Some(network) => management_mac(network),
            None => qemu::mac_for(&spec.name),
        },
        backing,
        created: jiff::Timestamp::now().to_string(),
        network: spec.network.clone(),
    };
    write_toml(&files.record(), &record).await?;
    guard.disarm();
    Ok(handle(&spec.name))
}

pub(super) fn handle(name: &str) -> VmHandle {
    VmHandle {
        name: name.to_string(),
        id: name.to_string(),
    }
}

/// The resolved file a new VM's disk is backed by. A template is first
/// checked against the sha256 its record names (build from a parent, smoke
/// test, deploy: every clone comes here).
async fn resolve_source(t: &LocalTarget, source: &Source) -> Result<PathBuf, TargetError> {
    let (path, sha256) = match source {
        Source::Base(suite) => {
            let image = t.base_images.get(suite).cloned();
            (image.ok_or(TargetError::NoBaseImage(*suite))?, None)
        }
        Source::Template(tpl) => match &tpl.artifact {
            Artifact::Local { path, sha256 } => (path.clone(), Some(sha256)),
            Artifact::Proxmox { .. } => {
                return Err(TargetError::ForeignArtifact {
                    name: tpl.name.clone(),
                });
            }
        },
    };
    // Overlays record the resolved file, never a symbolic link that may move.
    let path = tokio::fs::canonicalize(&path)
        .await
        .map_err(|e| TargetError::io(&path, e))?;
    if let Some(sha256) = sha256 {
        verify::template(&t.state, &path, sha256).await?;
    }
    Ok(path)
}

/// The backing file name an overlay in `dir` records for `backing`:
/// relative inside the state folder, so the project folder can move.
pub(super) async fn backing_name(
    t: &LocalTarget,
    dir: &Path,
    backing: &Path,
) -> Result<PathBuf, TargetError> {
    let root = t.state.root();
    let root = tokio::fs::canonicalize(root)
        .await
        .map_err(|e| TargetError::io(root, e))?;
    let dir = tokio::fs::canonicalize(dir)
        .await
        .map_err(|e| TargetError::io(dir, e))?;
    Ok(qcow2::backing_for(&dir, backing, &root))
}

/// A qcow2 overlay `disk` on `backing` (the resolved file, and the name the
/// overlay records for it).
async fn create_overlay(
    disk: &Path,
    (backing, name): (&Path, &Path),
    disk_gib: Option<u32>,
) -> Result<(), TargetError> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(name)
        .arg(disk);
    if let Some(gib) = disk_gib {
        let wanted = u64::from(gib) << 30;
        if wanted > virtual_size(backing).await? {
            cmd.arg(wanted.to_string());
        }
    }
    exec::run(&mut cmd).await.map(drop)
}

/// The virtual size of a disk image, from `qemu-img info`.
pub(super) async fn virtual_size(image: &Path) -> Result<u64, TargetError> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["info", "-U", "--output=json"]).arg(image);
    let out = exec::run(&mut cmd).await?;
    let info: Value = serde_json::from_slice(&out.stdout).map_err(|e| TargetError::State {
        path: image.to_path_buf(),
        message: format!("qemu-img info: {e}"),
    })?;
    info["virtual-size"]
        .as_u64()
        .ok_or_else(|| TargetError::State {
            path: image.to_path_buf(),
            message: "qemu-img info has no virtual-size".into(),
        })
}

pub(super) async fn set_cloud_init(
    t: &LocalTarget,
    vm: &VmHandle,
    data: &CloudInit,
) -> Result<(), TargetError> {
    let files = existing(t, vm).await?;
    if process::running_pid(&files.pid()).await.is_some() {
        return Err(TargetError::VmRunning(vm.name.clone()));
    }
    let seed = files.seed();
    let partial = files.dir.join(".seed.iso.partial");
    let _ = tokio::fs::remove_file(&partial).await;
    write_seed_iso(data, &partial).await?;
    tokio::fs::rename(&partial, &seed)
        .await
        .map_err(|e| TargetError::io(&seed, e))
}

/// The VM's files; an error when its folder is gone.
pub(super) async fn existing(t: &LocalTarget, vm: &VmHandle) -> Result<VmFiles, TargetError> {
    validate_name(&vm.id)?;
    let files = t.state.vm(&vm.id);
    match tokio::fs::try_exists(files.record()).await {
        Ok(true) => Ok(files),
        Ok(false) => Err(TargetError::VmNotFound(vm.name.clone())),
        Err(e) => Err(TargetError::io(files.record(), e)),
    }
}

/// The MAC of a deployed VM's management NIC (the one `vm.toml` records).
fn management_mac(network: &VmNetwork) -> String {
    match netdev::nics(network) {
        VmNics::Segment { management_mac, .. } => management_mac,
        VmNics::Bridged => qemu::mac_for(&network.segment),
    }
}

/// Kills QEMU if it runs, then removes the VM folder, and its segment with
/// the segment's last VM.
pub(super) async fn destroy(t: &LocalTarget, vm: &VmHandle) -> Result<(), TargetError> {
    validate_name(&vm.id)?;
    let files = t.state.vm(&vm.id);
    let segment = read_toml::<VmRecord>(&files.record())
        .await
        .ok()
        .and_then(|r| r.network)
        .map(|n| n.segment);
    remove_vm(vm, &files).await?;
    match segment {
        Some(segment) => segment_use::release_if_unused(t, &segment).await,
        None => Ok(()),
    }
}

async fn remove_vm(vm: &VmHandle, files: &VmFiles) -> Result<(), TargetError> {
    if let Some(pid) = process::running_pid(&files.pid()).await
        && !process::kill(pid).await
    {
        return Err(TargetError::VmRunning(vm.name.clone()));
    }
    match tokio::fs::remove_dir_all(&files.dir).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TargetError::io(&files.dir, e)),
    }
}

/// Every VM folder, with its labels (if readable) and whether QEMU runs.
pub(super) async fn list(t: &LocalTarget) -> Result<Vec<ManagedVm>, TargetError> {
    let mut out = Vec::new();
    for name in names_in(&t.state.vms(), None).await? {
        let files = t.state.vm(&name);
        let (labels, created) = labels_of(&files.record()).await;
        let state = match process::running_pid(&files.pid()).await {
            Some(_) => VmState::Running,
            None => VmState::Stopped,
        };
        out.push(ManagedVm {
            handle: handle(&name),
            labels,
            state,
            node: None,
            created,
        });
    }
    if let Err(e) = segment_use::warn_dead(t).await {
        t.progress
            .warn(format!("the segments' switches cannot be checked: {e}"));
    }
    Ok(out)
}

/// What `vm.toml` says about whose VM it is.
/// A VM's labels and, when its record says, when it was made.
async fn labels_of(record: &Path) -> (VmLabels, Option<jiff::Timestamp>) {
    let at = record.display().to_string();
    let labels = match read_toml::<VmRecord>(record).await {
        Ok(r) => return (VmLabels::Read(r.labels), r.created.parse().ok()),
        Err(TargetError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            VmLabels::Missing { at }
        }
        Err(TargetError::Io { source, .. }) => VmLabels::Unreadable {
            at,
            reason: format!("cannot be read: {source}"),
        },
        Err(TargetError::State { message, .. }) => VmLabels::Unreadable {
            at,
            reason: format!("cannot be parsed: {message}"),
        },
        Err(e) => VmLabels::Unreadable {
            at,
            reason: e.to_string(),
        },
    };
    (labels, None)
}

pub(super) async fn set_mode(path: &Path, mode: u32) -> Result<(), TargetError> {
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|e| TargetError::io(path, e))
}
