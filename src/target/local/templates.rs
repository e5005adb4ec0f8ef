//! Local templates: a stopped VM's overlay disk moved to
//! `templates/<name>.qcow2` and made read-only. Its backing file (the base
//! image or the parent role's template) stays as it was, so a template of a
//! role built on another role is a backing chain.

use super::LocalTarget;
use super::lifecycle::{existing, set_mode};
use super::state::{TemplateRecord, VmRecord, names_in, read_toml, write_toml};
use super::{base_meta, process};
use crate::target::{Artifact, TargetError, TemplateRef, VmHandle, validate_name};

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
    let sha256 = base_meta::sha256_file(&files.disk()).await?;
    set_mode(&files.disk(), 0o444).await?;
    let record = TemplateRecord {
        name: name.to_string(),
        sha256: sha256.clone(),
        backing: vm_record.backing,
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
    Ok(template_ref(name, disk, sha256))
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

/// The first VM or template whose disk is backed by `disk`.
async fn backed_by(t: &LocalTarget, disk: &std::path::Path) -> Result<Option<String>, TargetError> {
    let disk = match tokio::fs::canonicalize(disk).await {
        Ok(path) => path,
        Err(_) => return Ok(None),
    };
    for name in names_in(&t.state.templates(), Some("toml")).await? {
        if let Ok(r) = read_toml::<TemplateRecord>(&t.state.template_meta(&name)).await
            && r.backing == disk
        {
            return Ok(Some(format!("template `{name}`")));
        }
    }
    for name in names_in(&t.state.vms(), None).await? {
        if let Ok(r) = read_toml::<VmRecord>(&t.state.vm(&name).record()).await
            && r.backing == disk
        {
            return Ok(Some(format!("vm `{name}`")));
        }
    }
    Ok(None)
}
