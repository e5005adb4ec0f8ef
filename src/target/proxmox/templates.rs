//! Turning a stopped builder VM into a template, and removing templates.

use super::labels;
use super::vmconfig::ConfigChange;
use super::{ProxmoxTarget, PveError, handle, ownership, seed, vm_ref};
use crate::target::{
    Artifact, TargetError, TemplateMeta, TemplatePresence, TemplateRef, VmHandle, validate_name,
};

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

/// Removes an oxbake template once it proves to be `expected` (see
/// [`ownership`]). One that is gone is fine; one that does not prove it is
/// left alone; linked clones keep it alive.
pub(super) async fn destroy(
    t: &ProxmoxTarget,
    tpl: &TemplateRef,
    expected: &TemplateMeta,
) -> Result<(), TargetError> {
    let verified = ownership::verify(t, tpl, expected).await?;
    if verified.presence == TemplatePresence::Gone {
        return Ok(());
    }
    let vm = verified.vm;
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
