//! Channels: promote's gates, rollback, revoke, prune and diff. Registries
//! are made by hand with the registry API (no baking); the end-to-end test
//! (feature `e2e`) promotes a baked image through a real smoke test.

mod broken;
mod cli;
#[cfg(feature = "e2e")]
mod e2e;
mod fake;
mod ownership;
mod plan;
mod prune;
mod prune_faults;
mod sim;

use std::collections::BTreeMap;
use std::path::Path;

use oxbake::registry::{Artifact, CheckResult, ImageRecord, NewImage, Parent, Registry, Version};

/// A record's description: its target, parent, artifact, checks and packages.
pub struct Img<'a> {
    pub target: &'a str,
    pub parent: Parent,
    pub checks_pass: bool,
    pub packages: &'a [(&'a str, &'a str)],
}

impl Img<'_> {
    pub fn root() -> Img<'static> {
        Img {
            target: "local",
            parent: "base-image:debian-12-test".parse().unwrap(),
            checks_pass: true,
            packages: &[],
        }
    }

    pub fn child_of(parent: &ImageRecord) -> Img<'static> {
        Img {
            parent: Parent::Image {
                role: parent.role.clone(),
                version: parent.version,
            },
            ..Img::root()
        }
    }
}

/// Records an image of `role` whose local template is named after its
/// version, as a build would.
pub fn record(registry: &Registry, role: &str, img: Img<'_>) -> ImageRecord {
    record_with(registry, role, img, |role, v| Artifact::Local {
        path: format!(".oxbake/local/templates/{role}-{v}.qcow2").into(),
        sha256: "a".repeat(64).parse().unwrap(),
    })
}

pub fn record_with(
    registry: &Registry,
    role: &str,
    img: Img<'_>,
    artifact: impl FnOnce(&str, &Version) -> Artifact,
) -> ImageRecord {
    registry
        .record_with(role, |v| NewImage {
            inputs: "b".repeat(64).parse().unwrap(),
            parent: img.parent,
            target: img.target.into(),
            artifact: artifact(role, v),
            repositories: BTreeMap::new(),
            packages: img
                .packages
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            checks: vec![CheckResult {
                name: "nginx answers".into(),
                command: "curl -fsS http://127.0.0.1/".into(),
                passed: img.checks_pass,
                detail: String::new(),
            }],
            builder: None,
            size: None,
        })
        .unwrap()
}

/// Every file under `dir` but the lock, with its bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    files
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            walk(root, &path, files);
        } else if entry.file_name() != ".lock" {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.insert(rel, std::fs::read(&path).unwrap());
        }
    }
}
