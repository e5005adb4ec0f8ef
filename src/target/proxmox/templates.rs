//! Turning a stopped builder VM into a template, and removing templates.

use super::labels::{self, OXBAKE_TAG};
use super::vm::VmRef;
use super::vmconfig::ConfigChange;
use super::{ProxmoxTarget, PveError, handle, seed, split_tags, vm_ref};
use crate::target::{Artifact, TargetError, TemplateMeta, TemplateRef, VmHandle, validate_name};

/// Renames, retags and describes the VM, detaches and deletes its seed ISO
/// (it holds the builder's keys), then converts it. On failure the VM stays
/// a stopped VM for the caller to keep or destroy.
pub(super) async fn make(
    t: &ProxmoxTarget,
    h: &VmHandle,
    name: &str,
    meta: &TemplateMeta,
) -> Result<TemplateRef, TargetError> {
    validate_name(name)?;
    let vm = vm_ref(h)?;
    let status = t.client.vm_status(&vm).await.map_err(|e| gone(h, e))?;
    if status.is_running() {
        return Err(TargetError::VmRunning(h.name.clone()));
    }
    let config = t.client.vm_config(&vm).await?;
    let labels = config
        .get("description")
        .as_deref()
        .and_then(labels::labels_from_description);
    let seed_drives: Vec<String> = config
        .0
        .keys()
        .filter(|k| config.get(k).is_some_and(|v| seed::is_seed(&v, &vm)))
        .cloned()
        .collect();
    let change = ConfigChange {
        name: Some(name.to_string()),
        tags: Some(labels::template_tags(&meta.role)),
        description: Some(labels::template_description(meta)),
        delete: seed_drives,
        ..Default::default()
    };
    let answer = t.client.set_config(&vm, change.to_form()).await?;
    t.client.finish(answer, t.task_timeout).await?;
    seed::remove(t, &vm).await?;
    let converted = match t.client.convert_to_template(&vm).await {
        Ok(answer) => t.client.finish(answer, t.task_timeout).await,
        Err(e) => Err(e),
    };
    if let Err(e) = converted {
        // Still a VM: give it back its labels, so that the build's clean-up
        // (and `oxbake gc`) find it by its run id.
        if let Some(labels) = &labels {
            let back = ConfigChange {
                tags: Some(labels::vm_tags(labels)),
                description: Some(labels::vm_description(labels)),
                ..Default::default()
            };
            if let Ok(answer) = t.client.set_config(&vm, back.to_form()).await {
                let _ = t.client.finish(answer, t.task_timeout).await;
            }
        }
        return Err(e.into());
    }
    let h = handle(name, &vm);
    Ok(TemplateRef {
        name: h.name,
        artifact: Artifact::Proxmox {
            node: vm.node,
            vmid: vm.vmid,
            name: name.to_string(),
        },
    })
}

fn gone(h: &VmHandle, e: PveError) -> TargetError {
    if e.is_not_found() {
        TargetError::VmNotFound(h.name.clone())
    } else {
        e.into()
    }
}

/// Removes an oxbake template. One that is gone is fine; an id that now
/// holds something else is left alone; linked clones keep it alive.
pub(super) async fn destroy(t: &ProxmoxTarget, tpl: &TemplateRef) -> Result<(), TargetError> {
    let Artifact::Proxmox { node, vmid, name } = &tpl.artifact else {
        return Err(TargetError::ForeignArtifact {
            name: tpl.name.clone(),
        });
    };
    let vm = VmRef {
        node: node.clone(),
        vmid: *vmid,
    };
    let config = match t.client.vm_config(&vm).await {
        Ok(c) => c,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let ours = config.get("name").as_deref() == Some(name.as_str())
        && config.get("template").as_deref() == Some("1")
        && config
            .get("tags")
            .is_some_and(|tags| split_tags(&tags).iter().any(|t| t == OXBAKE_TAG));
    if !ours {
        return Err(TargetError::TemplateNotFound(format!(
            "{name} ({node}/{vmid})"
        )));
    }
    let answer = t.client.destroy_vm(&vm).await?;
    match t.client.finish(Some(answer), t.task_timeout).await {
        Ok(()) => Ok(()),
        Err(PveError::TaskFailed { message, .. }) if message.contains("still in use") => {
            Err(TargetError::TemplateInUse {
                name: tpl.name.clone(),
                user: "linked clones".to_string(),
            })
        }
        Err(e) => Err(e.into()),
    }
}
