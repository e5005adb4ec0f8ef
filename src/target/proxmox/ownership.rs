//! Proving that a template is the image a registry record names before it is
//! destroyed. The registry is input from people (reviewed, merged, hand
//! edited), so a record's node, VMID and template name are claims: the VM at
//! that VMID must be an oxbake template named `ROLE-VERSION` of the record,
//! and its description's JSON block (written by `make_template`) must name
//! the same role, version and inputs hash.

use super::labels::{OXBAKE_TAG, parse_description};
use super::vm::{VmConfig, VmRef};
use super::{ProxmoxTarget, split_tags};
use crate::target::{Artifact, TargetError, TemplateMeta, TemplatePresence, TemplateRef};

/// Where the record says the template is, and the VM found there.
pub(super) struct Verified {
    pub vm: VmRef,
    pub presence: TemplatePresence,
}

pub(super) async fn verify(
    t: &ProxmoxTarget,
    tpl: &TemplateRef,
    expected: &TemplateMeta,
) -> Result<Verified, TargetError> {
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
        Err(e) if e.is_not_found() => {
            let presence = TemplatePresence::Gone;
            return Ok(Verified { vm, presence });
        }
        Err(e) => return Err(e.into()),
    };
    let why = mismatches(&config, name, expected);
    if !why.is_empty() {
        return Err(TargetError::NotTheRecordedTemplate {
            template: format!("{node}/{vmid} (`{name}`)"),
            why: why.join("; "),
        });
    }
    let presence = TemplatePresence::Ours;
    Ok(Verified { vm, presence })
}

/// What about the VM in `config` does not match the record: its template
/// name `recorded` and its identity `expected`.
fn mismatches(config: &VmConfig, recorded: &str, expected: &TemplateMeta) -> Vec<String> {
    let mut why = Vec::new();
    let want = format!("{}-{}", expected.role, expected.version);
    if recorded != want {
        why.push(format!(
            "the record's template name `{recorded}` is not `{want}`"
        ));
    }
    let found = config.get("name").unwrap_or_default();
    if found != want {
        why.push(format!("the VM is named `{found}`, expected `{want}`"));
    }
    if config.get("template").as_deref() != Some("1") {
        why.push("it is not a template".to_owned());
    }
    let tagged = config
        .get("tags")
        .is_some_and(|tags| split_tags(&tags).iter().any(|t| t == OXBAKE_TAG));
    if !tagged {
        why.push(format!("it has no `{OXBAKE_TAG}` tag"));
    }
    let meta = config
        .get("description")
        .as_deref()
        .and_then(parse_description)
        .and_then(|doc| doc.get("oxbake")?.get("template").cloned())
        .and_then(|v| serde_json::from_value::<TemplateMeta>(v).ok());
    match meta {
        Some(meta) => why.extend(meta.mismatches(expected)),
        None => why.push("its description has no oxbake template block".to_owned()),
    }
    why
}
