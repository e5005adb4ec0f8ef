//! Before oxbake destroys a template it proves the template is the one the
//! record names and no one else's. The registry is input from people (it is
//! reviewed, merged and can be hand edited), so a record's VMID, node, name
//! or file is a claim, not a fact:
//!
//! - no other record of the same target claims the same template (VMID on
//!   Proxmox, where VMIDs are cluster-wide; the file locally), and
//! - the target proves the template is the record's image
//!   ([`Target::verify_template`]: its name is `ROLE-VERSION` of the record
//!   and its own metadata names the same role, version and inputs hash).
//!
//! `prune --dry-run` runs the same proof, so it says what the real run will
//! do; the real run proves it again as it destroys
//! ([`Target::destroy_template`] verifies before it acts).

use std::path::{Component, Path, PathBuf};

use crate::registry::{Artifact, ImageRecord};
use crate::target::{Target, TemplateMeta, TemplatePresence};

use super::artifact::template_of;

/// What a record's template must prove to be.
pub fn identity(record: &ImageRecord) -> TemplateMeta {
    TemplateMeta {
        role: record.role.clone(),
        version: record.version.to_string(),
        inputs: record.inputs.to_string(),
        parent: None,
    }
}

/// Where a record says its template is, for messages.
pub fn location(record: &ImageRecord) -> String {
    match &record.artifact {
        Artifact::Proxmox {
            node,
            vmid,
            template,
        } => format!("{node}/{vmid} (`{template}`)"),
        Artifact::Local { path, .. } => format!("`{}`", path.display()),
    }
}

/// The other records of `record`'s target that claim its template.
pub fn other_claims<'a>(record: &ImageRecord, records: &'a [ImageRecord]) -> Vec<&'a ImageRecord> {
    let key = claim(record);
    records
        .iter()
        .filter(|r| r.target == record.target && r.id() != record.id() && claim(r) == key)
        .collect()
}

/// What a record claims: a VMID, or a file (lexically normalised).
#[derive(PartialEq, Eq)]
enum Claim {
    Vmid(u32),
    File(PathBuf),
}

fn claim(record: &ImageRecord) -> Claim {
    match &record.artifact {
        Artifact::Proxmox { vmid, .. } => Claim::Vmid(*vmid),
        Artifact::Local { path, .. } => Claim::File(normalise(path)),
    }
}

fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Proves `record` owns its template, changing nothing. `Err` says which
/// template did not prove it and why (for the report); the template stays.
pub async fn prove(
    target: &dyn Target,
    record: &ImageRecord,
    records: &[ImageRecord],
    root: &Path,
) -> Result<TemplatePresence, String> {
    let others = other_claims(record, records);
    if !others.is_empty() {
        let ids: Vec<String> = others.iter().map(|r| format!("`{}`", r.id())).collect();
        return Err(format!(
            "kept template {}: it is also claimed by {}, so it is not provably this image's",
            location(record),
            ids.join(", ")
        ));
    }
    target
        .verify_template(&template_of(record, root), &identity(record))
        .await
        .map_err(|e| format!("kept its template: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_compared_after_normalising() {
        assert_eq!(
            normalise(Path::new("./.oxbake/local/../local/templates/ui-1.qcow2")),
            Path::new(".oxbake/local/templates/ui-1.qcow2")
        );
    }
}
