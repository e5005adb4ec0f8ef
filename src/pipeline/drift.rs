//! `oxbake ls --target NAME`: the registry against what the target holds
//! (shown by [`crate::report::drift`]).
//! A record of that target whose template is gone (or is now another VM)
//! is *missing*; a template oxbake tagged that no record names is
//! *unrecorded* (a build whose record was never written, or a registry
//! that lost it). Revoked records may lose their template without drift.
//! A record's published copy on the target counts as that record's
//! template there (`oxbake publish`).
//! Local paths are compared as the files they name: the registry records
//! them relative to the project, the target lists them absolute.

use std::path::Path;

use crate::registry::{Artifact, ImageHead, ImageSummary};
use crate::target::{self, TemplateRef};

/// What differs between the registry and a target.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drift {
    /// `ROLE@VERSION` and where the record says its template is.
    pub missing: Vec<(String, String)>,
    /// Templates on the target no record names.
    pub unrecorded: Vec<TemplateRef>,
}

impl Drift {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unrecorded.is_empty()
    }
}

/// Compares the records of `target_name` with the target's `templates`;
/// `root` is the project folder recorded local paths are relative to.
pub fn compare(
    records: &[ImageSummary],
    target_name: &str,
    templates: &[TemplateRef],
    root: &Path,
) -> Drift {
    let ours: Vec<(&ImageSummary, &Artifact)> = records
        .iter()
        .filter_map(|r| Some((r, r.artifact_on(target_name)?)))
        .collect();
    let same = |record: &Artifact, t: &TemplateRef| same(record, t, root);
    let missing = ours
        .iter()
        .filter(|(r, a)| !r.is_revoked() && !templates.iter().any(|t| same(a, t)))
        .map(|(r, a)| (r.id(), location(a)))
        .collect();
    let unrecorded = templates
        .iter()
        .filter(|t| !ours.iter().any(|(_, a)| same(a, t)))
        .cloned()
        .collect();
    Drift {
        missing,
        unrecorded,
    }
}

/// Whether a record's artifact is that template: same node, VMID and name,
/// or the same file.
fn same(record: &Artifact, template: &TemplateRef, root: &Path) -> bool {
    match (record, &template.artifact) {
        (
            Artifact::Proxmox {
                node,
                vmid,
                template: name,
            },
            target::Artifact::Proxmox {
                node: n, vmid: v, ..
            },
        ) => node == n && vmid == v && name == &template.name,
        (Artifact::Local { path, .. }, target::Artifact::Local { path: p, .. }) => {
            same_file(&root.join(path), p)
        }
        _ => false,
    }
}

/// Whether two paths name one file: equal as written, or once every
/// symbolic link and `..` is resolved.
fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(a), Ok(b)) if a == b
        )
}

fn location(artifact: &Artifact) -> String {
    match artifact {
        Artifact::Proxmox {
            node,
            vmid,
            template,
        } => format!("{node}/{vmid} ({template})"),
        Artifact::Local { path, .. } => path.display().to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::registry::{ImageRecord, NewImage, Revocation};

    fn record(role: &str, version: &str, target: &str, vmid: u32) -> ImageSummary {
        let image = NewImage {
            inputs: "a".repeat(64).parse().unwrap(),
            parent: "base@2026.11.24.1".parse().unwrap(),
            target: target.into(),
            artifact: Artifact::Proxmox {
                node: "pve1".into(),
                vmid,
                template: format!("{role}-{version}"),
            },
            repositories: Default::default(),
            packages: Default::default(),
            checks: Vec::new(),
            builder: None,
            size: None,
        };
        let created = "2026-11-25T10:00:00Z".parse().unwrap();
        ImageRecord::new(role, version.parse().unwrap(), created, image).into()
    }

    fn template(name: &str, vmid: u32) -> TemplateRef {
        TemplateRef {
            name: name.into(),
            artifact: target::Artifact::Proxmox {
                node: "pve1".into(),
                vmid,
                name: name.into(),
            },
        }
    }

    /// The drift of the test below, for the rendering's tests.
    pub(crate) fn sample() -> (Drift, Drift) {
        let mut revoked = record("ui", "2026.11.25.1", "pve", 9102);
        revoked.revoked = Some(Revocation {
            reason: "cve".into(),
            when: "2026-11-25T11:00:00Z".parse().unwrap(),
            who: "ops".into(),
        });
        let records = [
            record("base", "2026.11.25.1", "pve", 9100),
            record("ui", "2026.11.25.2", "pve", 9101),
            revoked,
            record("ui", "2026.11.25.3", "local", 9103),
        ];
        let on_target = [
            template("base-2026.11.25.1", 9100),
            // The VMID now holds another template than the record says.
            template("ui-2026.11.24.9", 9101),
            template("stray-2026.11.20.1", 9200),
        ];
        let drift = compare(&records, "pve", &on_target, Path::new("/p"));
        let synced = compare(&records[..1], "pve", &on_target[..1], Path::new("/p"));
        (drift, synced)
    }

    #[test]
    fn missing_and_unrecorded_templates_are_found_per_target() {
        let (drift, synced) = sample();
        assert_eq!(
            drift.missing,
            [(
                "ui@2026.11.25.2".to_string(),
                "pve1/9101 (ui-2026.11.25.2)".to_string()
            )]
        );
        let unrecorded: Vec<&str> = drift.unrecorded.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(unrecorded, ["ui-2026.11.24.9", "stray-2026.11.20.1"]);
        assert!(synced.is_empty());
    }
}
