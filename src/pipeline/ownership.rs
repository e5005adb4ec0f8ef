//! Before oxbake destroys a template it proves the template is the one the
//! record names and no one else's. The registry is input from people (it is
//! reviewed, merged and can be hand edited), so a record's VMID, node, name
//! or file is a claim, not a fact:
//!
//! - no other record claims the same template on the same target (VMID on
//!   Proxmox, where VMIDs are cluster-wide; the file locally), whether it
//!   built it there or published it there, and
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

use super::artifact::template_on;

/// What a record's template must prove to be.
pub fn identity(record: &impl ImageHead) -> TemplateMeta {
    TemplateMeta {
        role: record.role().to_owned(),
        version: record.version().to_string(),
        inputs: record.inputs().to_string(),
        parent: None,
    }
}

/// Which records claim each template, per target (a record claims its
/// built template and each published copy): built once for all the
/// records, so finding the other claims of one costs no pass over them.
pub struct Claims {
    ids: HashMap<(String, Claim), Vec<String>>,
}

impl Claims {
    pub fn of<I: ImageHead>(records: &[I]) -> Self {
        let mut ids: HashMap<(String, Claim), Vec<String>> = HashMap::new();
        for r in records {
            let copies = r.published().iter().map(|p| (&p.target, &p.artifact));
            for (target, artifact) in
                std::iter::once((&r.target().to_owned(), r.artifact())).chain(copies)
            {
                let key = (target.clone(), claim(artifact));
                ids.entry(key).or_default().push(r.id());
            }
        }
        Self { ids }
    }

    /// The ids of the other records that claim `artifact`, `record`'s
    /// template on `target`, in the order of the records.
    fn others(&self, record: &impl ImageHead, target: &str, artifact: &Artifact) -> Vec<&str> {
        let id = record.id();
        let key = (target.to_owned(), claim(artifact));
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

fn claim(artifact: &Artifact) -> Claim {
    match artifact {
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

/// Proves `record` owns its template on `target` (named `target_name`: the
/// target it was built on, or one it was published to), changing nothing.
/// `Err` says which template did not prove it and why (for the report);
/// the template stays.
pub async fn prove(
    target: &dyn Target,
    target_name: &str,
    record: &impl ImageHead,
    claims: &Claims,
    root: &Path,
) -> Result<TemplatePresence, String> {
    let Some(artifact) = record.artifact_on(target_name) else {
        return Err(format!("it has no template on target `{target_name}`"));
    };
    let others = claims.others(record, target_name, artifact);
    if !others.is_empty() {
        let ids: Vec<String> = others.iter().map(|id| format!("`{id}`")).collect();
        return Err(format!(
            "kept template {}: it is also claimed by {}, so it is not provably this image's",
            artifact.describe(),
            ids.join(", ")
        ));
    }
    target
        .verify_template(&template_on(record, target_name, root), &identity(record))
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
