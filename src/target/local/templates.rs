//! Local templates: a stopped VM's overlay disk moved to
//! `templates/<name>.qcow2` and made read-only. Its backing file (the base
//! image or the parent role's template) stays as it was, so a template of a
//! role built on another role is a backing chain.

use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::LocalTarget;
use super::lifecycle::{backing_name, existing, set_mode};
use super::state::{TemplateRecord, VmRecord, names_in, read_toml, write_toml};
use super::{base_meta, process, qcow2, verify};
use crate::target::{Artifact, TargetError, TemplateRef, VmHandle, exec, validate_name};

pub(super) async fn make(
    t: &LocalTarget,
    vm: &VmHandle,
    name: &str,
) -> Result<TemplateRef, TargetError> {
    validate_name(name)?;
    let files = existing(t, vm).await?;
    if process::running_pid(&files.pid()).await.is_some() {
        return Err(TargetError::VmRunning(vm.name.clone()));
    }
    let dir = t.state.templates();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| TargetError::io(&dir, e))?;
    let disk = t.state.template_disk(name);
    if tokio::fs::try_exists(&disk)
        .await
        .map_err(|e| TargetError::io(&disk, e))?
    {
        return Err(TargetError::TemplateExists(name.to_string()));
    }
    let vm_record: VmRecord = read_toml(&files.record()).await?;
    let backing = rebase_for(t, &files.disk(), &dir).await?;
    let sha256 = base_meta::sha256_file(&files.disk()).await?;
    set_mode(&files.disk(), 0o444).await?;
    let record = TemplateRecord {
        name: name.to_string(),
        sha256: sha256.clone(),
        backing: backing.unwrap_or(vm_record.backing),
        labels: vm_record.labels,
        created: jiff::Timestamp::now().to_string(),
    };
    write_toml(&t.state.template_meta(name), &record).await?;
    tokio::fs::rename(files.disk(), &disk)
        .await
        .map_err(|e| TargetError::io(&disk, e))?;
    tokio::fs::remove_dir_all(&files.dir)
        .await
        .map_err(|e| TargetError::io(&files.dir, e))?;
    verify::remember_file(&t.state, &disk, &sha256).await;
    Ok(template_ref(name, disk, sha256))
}

/// Makes `disk`'s backing file name right for its new folder `dir` (it is
/// about to move there) and returns the resolved backing file.
async fn rebase_for(
    t: &LocalTarget,
    disk: &Path,
    dir: &Path,
) -> Result<Option<PathBuf>, TargetError> {
    let Some(backing) = qcow2::backing_chain(disk).await?.first().cloned() else {
        return Ok(None);
    };
    let name = backing_name(t, dir, &backing).await?;
    if qcow2::backing_name(disk).await?.as_deref() != Some(name.as_path()) {
        // `-u`: only the name in the header changes, not a byte of data.
        let mut cmd = Command::new("qemu-img");
        cmd.args(["rebase", "-q", "-u", "-F", "qcow2", "-b"])
            .arg(&name)
            .arg(disk);
        exec::run(&mut cmd).await?;
    }
    Ok(Some(backing))
}

fn template_ref(name: &str, path: std::path::PathBuf, sha256: String) -> TemplateRef {
    TemplateRef {
        name: name.to_string(),
        artifact: Artifact::Local { path, sha256 },
    }
}

/// Every template with both its disk and its record present.
pub(super) async fn list(t: &LocalTarget) -> Result<Vec<TemplateRef>, TargetError> {
    let mut out = Vec::new();
    for name in names_in(&t.state.templates(), Some("qcow2")).await? {
        let meta = t.state.template_meta(&name);
        if let Ok(record) = read_toml::<TemplateRecord>(&meta).await {
            out.push(template_ref(
                &name,
                t.state.template_disk(&name),
                record.sha256,
            ));
        }
    }
    Ok(out)
}

/// Removes a template unless a VM or another template is backed by it.
pub(super) async fn destroy(t: &LocalTarget, template: &TemplateRef) -> Result<(), TargetError> {
    validate_name(&template.name)?;
    let disk = t.state.template_disk(&template.name);
    if let Some(user) = backed_by(t, &disk).await? {
        return Err(TargetError::TemplateInUse {
            name: template.name.clone(),
            user,
        });
    }
    for path in [disk, t.state.template_meta(&template.name)] {
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TargetError::io(&path, e)),
        }
    }
    Ok(())
}

/// The first VM or template whose disk has `disk` in its backing chain,
/// read from the disks' own headers (a VM whose `vm.toml` is unreadable
/// still counts). A disk whose chain cannot be read counts as a user: what
/// cannot be proven unused is kept.
async fn backed_by(t: &LocalTarget, disk: &Path) -> Result<Option<String>, TargetError> {
    let disk = match tokio::fs::canonicalize(disk).await {
        Ok(path) => path,
        Err(_) => return Ok(None),
    };
    let mut disks = Vec::new();
    for name in names_in(&t.state.templates(), Some("qcow2")).await? {
        disks.push((format!("template `{name}`"), t.state.template_disk(&name)));
    }
    for name in names_in(&t.state.vms(), None).await? {
        disks.push((format!("vm `{name}`"), t.state.vm(&name).disk()));
    }
    for (user, path) in disks {
        match qcow2::backing_chain(&path).await {
            Ok(chain) if chain.contains(&disk) => return Ok(Some(user)),
            Ok(_) => {}
            Err(TargetError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Ok(Some(format!("{user} (its disk cannot be read: {e})"))),
        }
    }
    Ok(None)
}

/// The bytes a template's qcow2 file takes on disk (allocated blocks, not
/// its apparent length: the bake's trim leaves holes).
pub async fn size(template: &TemplateRef) -> Result<Option<u64>, TargetError> {
    let Artifact::Local { path, .. } = &template.artifact else {
        return Ok(None);
    };
    allocated(path).await.map(Some)
}

/// The bytes a file takes on disk: its allocated blocks.
pub async fn allocated(path: &std::path::Path) -> Result<u64, TargetError> {
    use std::os::unix::fs::MetadataExt;
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| TargetError::io(path, e))?;
    Ok(meta.blocks() * 512)
}
