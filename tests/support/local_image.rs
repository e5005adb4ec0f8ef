//! Images recorded as built on the local target without a bake: a real
//! qcow2 overlay on a backing file (made with qemu-img), for the tests of
//! what happens to an image after its build (publish, prune, faults).

use std::path::Path;

use oxbake::registry::{Artifact, ImageRecord, NewImage, Registry};
use sha2::{Digest, Sha256};

use crate::support::project::TestProject;
use crate::support::pve_sim::PveSim;

/// A local template as a build of a child role leaves it: an overlay
/// (`ROLE-…-top.qcow2`) on its parent's file, both under
/// `.oxbake/local/templates`. Returns the overlay's path, relative to
/// the project, and its sha256.
fn local_template(root: &Path, role: &str) -> (String, String) {
    let dir = root.join(".oxbake/local/templates");
    std::fs::create_dir_all(&dir).unwrap();
    let qemu_img = |args: &[&str]| {
        let ok = std::process::Command::new("qemu-img")
            .args(args)
            .current_dir(&dir)
            .status()
            .unwrap();
        assert!(ok.success(), "qemu-img {args:?}");
    };
    // Each call makes its own pair (two records never claim one file).
    let free = (0..)
        .find(|i| !dir.join(format!("{role}-{i}-top.qcow2")).exists())
        .unwrap();
    let parent = format!("{role}-{free}-parent.qcow2");
    let top = format!("{role}-{free}-top.qcow2");
    qemu_img(&["create", "-q", "-f", "qcow2", &parent, "16M"]);
    qemu_img(&[
        "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", &parent, &top,
    ]);
    let sha = hex::encode(Sha256::digest(std::fs::read(dir.join(&top)).unwrap()));
    (format!(".oxbake/local/templates/{top}"), sha)
}

/// Records an image of `role` built on the local target.
pub fn local_record(root: &Path, role: &str) -> ImageRecord {
    let (path, sha) = local_template(root, role);
    Registry::for_project(root)
        .record(
            role,
            NewImage {
                inputs: "c".repeat(64).parse().unwrap(),
                parent: "base-image:debian-12-test".parse().unwrap(),
                target: "local".into(),
                artifact: Artifact::Local {
                    path: path.into(),
                    sha256: sha.parse().unwrap(),
                },
                repositories: Default::default(),
                packages: Default::default(),
                checks: Vec::new(),
                builder: None,
                size: None,
            },
        )
        .unwrap()
}

/// A fresh project with the simulator as target `sim` and one local image
/// of `ui` to publish there.
pub fn project_with_image(sim: &PveSim) -> (TestProject, ImageRecord) {
    let project = TestProject::copy();
    sim.add_to(&project, "sim");
    let record = local_record(project.root(), "ui");
    (project, record)
}
