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

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use crate::registry::{Artifact, ImageHead};
use crate::target::{Target, TemplateMeta, TemplatePresence};

use super::artifact::template_of;

/// What a record's template must prove to be.
pub fn identity(record: &impl ImageHead) -> TemplateMeta {
    TemplateMeta {
        role: record.role().to_owned(),
        version: record.version().to_string(),
        inputs: record.inputs().to_string(),
        parent: None,
    }
}

/// Where a record says its template is, for messages.
pub fn location(record: &impl ImageHead) -> String {
    match record.artifact() {
        Artifact::Proxmox {
            node,
            vmid,
            template,
        } => format!("{node}/{vmid} (`{template}`)"),
        Artifact::Local { path, .. } => format!("`{}`", path.display()),
    }
}

/// Which records claim each template, per target: built once for all the
/// records, so finding the other claims of one costs no pass over them.
pub struct Claims {
    ids: HashMap<(String, Claim), Vec<String>>,
}

impl Claims {
    pub fn of<I: ImageHead>(records: &[I]) -> Self {
        let mut ids: HashMap<(String, Claim), Vec<String>> = HashMap::new();
        for r in records {
            let key = (r.target().to_owned(), claim(r));
            ids.entry(key).or_default().push(r.id());
        }
        Self { ids }
    }

    /// The ids of the other records of `record`'s target that claim its
    /// template, in the order of the records.
    pub fn others(&self, record: &impl ImageHead) -> Vec<&str> {
        let id = record.id();
        let key = (record.target().to_owned(), claim(record));
        self.ids
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|other| **other != id)
            .map(String::as_str)
            .collect()
    }
}

/// What a record claims: a VMID, or a file (lexically normalised).
#[derive(PartialEq, Eq, Hash)]
enum Claim {
    Vmid(u32),
    File(PathBuf),
}

fn claim(record: &impl ImageHead) -> Claim {
    match record.artifact() {
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
    record: &impl ImageHead,
    claims: &Claims,
    root: &Path,
) -> Result<TemplatePresence, String> {
    let others = claims.others(record);
    if !others.is_empty() {
        let ids: Vec<String> = others.iter().map(|id| format!("`{id}`")).collect();
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
