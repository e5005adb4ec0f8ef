//! Listing what oxbake owns on the cluster: by its `oxbake` tag, and VMs
//! in oxbake's VMID range that are not tagged yet but carry oxbake's labels
//! in their description (a clone whose request went unanswered, so oxbake
//! never got to tag it).

use super::cluster::Resource;
use super::labels::{self, OXBAKE_TAG};
use super::vm::VmRef;
use super::{ProxmoxTarget, handle};
use crate::target::{Artifact, ManagedVm, TargetError, TemplateRef, VmLabels, VmState};

async fn ours(t: &ProxmoxTarget) -> Result<Vec<Resource>, TargetError> {
    let all = t.client.vm_resources().await?;
    Ok(all.into_iter().filter(|r| r.has_tag(OXBAKE_TAG)).collect())
}

/// Tagged VMs, and untagged ones in the VMID range (to be judged by their
/// description).
async fn candidates(t: &ProxmoxTarget) -> Result<Vec<Resource>, TargetError> {
    let [lo, hi] = t.settings.vmid_range;
    let in_range = |r: &Resource| (u64::from(lo)..=u64::from(hi)).contains(&r.vmid);
    let all = t.client.vm_resources().await?;
    Ok(all
        .into_iter()
        .filter(|r| !r.template && (r.has_tag(OXBAKE_TAG) || in_range(r)))
        .collect())
}

fn vm_of(r: &Resource) -> Option<VmRef> {
    Some(VmRef {
        node: r.node.clone(),
        vmid: u32::try_from(r.vmid).ok()?,
    })
}

/// VMs (not templates), with the labels of their description (the exact
/// values) or, failing that, of their tags.
pub(super) async fn vms(t: &ProxmoxTarget) -> Result<Vec<ManagedVm>, TargetError> {
    let mut out = Vec::new();
    for r in candidates(t).await? {
        let Some(vm) = vm_of(&r) else { continue };
        let config = match t.client.vm_config(&vm).await {
            Ok(c) => c,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e.into()),
        };
        if config.get("template").as_deref() == Some("1") {
            continue;
        }
        let at = format!("{}/{}", vm.node, vm.vmid);
        let labels = match config
            .get("description")
            .as_deref()
            .and_then(labels::labels_of_block)
        {
            Some(Ok(labels)) => VmLabels::Read(labels),
            _ if !r.has_tag(OXBAKE_TAG) => continue,
            // Tagged as ours, but what it says about itself is garbled.
            Some(Err(reason)) => VmLabels::Unreadable { at, reason },
            None => match labels::labels_from_tags(&r.tag_list()) {
                Some(labels) => VmLabels::Read(labels),
                None => VmLabels::Missing { at },
            },
        };
        let name = config.get("name").or(r.name.clone()).unwrap_or_default();
        let state = match r.status.as_deref() {
            Some("running") => VmState::Running,
            _ => VmState::Stopped,
        };
        let created = config
            .get("description")
            .as_deref()
            .and_then(labels::created_from_description);
        out.push(ManagedVm {
            handle: handle(&name, &vm),
            labels,
            state,
            node: Some(vm.node),
            created,
        });
    }
    Ok(out)
}

pub(super) async fn templates(t: &ProxmoxTarget) -> Result<Vec<TemplateRef>, TargetError> {
    let mut out = Vec::new();
    for r in ours(t).await?.into_iter().filter(|r| r.template) {
        let Some(vm) = vm_of(&r) else { continue };
        let name = r.name.clone().unwrap_or_default();
        out.push(TemplateRef {
            name: name.clone(),
            artifact: Artifact::Proxmox {
                node: vm.node,
                vmid: vm.vmid,
                name,
            },
        });
    }
    Ok(out)
}
