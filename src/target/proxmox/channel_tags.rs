//! Channel tags on templates: `ch-CHANNEL` for every channel that runs the
//! template. The other tags (`oxbake`, `role-ROLE`, `kind-template`, any an
//! operator added) are kept. After the change the tags are read back, so a
//! cluster that silently dropped one is noticed.

use super::labels::{OXBAKE_TAG, tag_value};
use super::vm::VmRef;
use super::vmconfig::ConfigChange;
use super::{ProxmoxTarget, split_tags};
use crate::target::{Artifact, TargetError, TemplateRef};

const PREFIX: &str = "ch-";

/// Sets exactly `channels` as the template's `ch-` tags.
pub(super) async fn set(
    t: &ProxmoxTarget,
    tpl: &TemplateRef,
    channels: &[String],
) -> Result<(), TargetError> {
    let vm = template_vm(tpl)?;
    let config = t.client.vm_config(&vm).await.map_err(|e| {
        if e.is_not_found() {
            TargetError::TemplateNotFound(tpl.name.clone())
        } else {
            e.into()
        }
    })?;
    let current = config
        .get("tags")
        .map(|t| split_tags(&t))
        .unwrap_or_default();
    if !current.iter().any(|t| t == OXBAKE_TAG) || config.get("template").as_deref() != Some("1") {
        return Err(TargetError::TemplateNotFound(format!(
            "{} ({}/{})",
            tpl.name, vm.node, vm.vmid
        )));
    }
    let wanted = channel_tags(channels);
    if own_channel_tags(&current) == wanted {
        return Ok(());
    }
    let mut tags: Vec<String> = current
        .into_iter()
        .filter(|t| !t.starts_with(PREFIX))
        .collect();
    tags.extend(wanted.iter().cloned());
    let change = ConfigChange {
        tags: Some(tags),
        ..Default::default()
    };
    let answer = t.client.set_config(&vm, change.to_form()).await?;
    t.client.finish(answer, t.task_timeout).await?;
    verify(t, tpl, &vm, &wanted).await
}

async fn verify(
    t: &ProxmoxTarget,
    tpl: &TemplateRef,
    vm: &VmRef,
    wanted: &[String],
) -> Result<(), TargetError> {
    let found = t
        .client
        .vm_config(vm)
        .await?
        .get("tags")
        .unwrap_or_default();
    if own_channel_tags(&split_tags(&found)) == wanted {
        Ok(())
    } else {
        Err(TargetError::TagsNotApplied {
            name: tpl.name.clone(),
            expected: wanted.join(";"),
            found,
        })
    }
}

fn template_vm(tpl: &TemplateRef) -> Result<VmRef, TargetError> {
    match &tpl.artifact {
        Artifact::Proxmox { node, vmid, .. } => Ok(VmRef {
            node: node.clone(),
            vmid: *vmid,
        }),
        Artifact::Local { .. } => Err(TargetError::ForeignArtifact {
            name: tpl.name.clone(),
        }),
    }
}

/// The `ch-` tags for `channels`, sorted as Proxmox stores them.
fn channel_tags(channels: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = channels
        .iter()
        .map(|c| format!("{PREFIX}{}", tag_value(c)))
        .collect();
    tags.sort();
    tags.dedup();
    tags
}

fn own_channel_tags(tags: &[String]) -> Vec<String> {
    let mut own: Vec<String> = tags
        .iter()
        .filter(|t| t.starts_with(PREFIX))
        .cloned()
        .collect();
    own.sort();
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_tags_are_valid_sorted_and_unique() {
        let names = ["prod".to_owned(), "Dev".to_owned(), "prod".to_owned()];
        assert_eq!(channel_tags(&names), ["ch-dev", "ch-prod"]);
        assert!(channel_tags(&[]).is_empty());
        let mixed = ["oxbake", "ch-prod", "role-ui", "ch-dev"].map(String::from);
        assert_eq!(own_channel_tags(&mixed), ["ch-dev", "ch-prod"]);
    }
}
