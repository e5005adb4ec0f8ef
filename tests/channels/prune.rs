//! `oxbake prune` on the local target with a hand-made registry.

use oxbake::registry::Registry;

use super::{Img, record, snapshot};
use crate::support::project::TestProject;

#[test]
fn prune_dry_run_changes_nothing_then_prune_removes_records_and_templates() {
    let project = TestProject::copy();
    let config = project.read("oxbake.toml").replace("keep = 5", "keep = 2");
    project.write("oxbake.toml", &config);
    let registry = Registry::for_project(project.root());
    let b: Vec<_> = (0..4)
        .map(|_| record(&registry, "base", Img::root()))
        .collect();
    let u: Vec<_> = [1, 2, 3, 3]
        .iter()
        .map(|&p| record(&registry, "ui", Img::child_of(&b[p])))
        .collect();
    registry
        .set_channel("ui", "prod", &u[0].version, "alice", "release")
        .unwrap();
    let template = |r: &oxbake::registry::ImageRecord| {
        project.path(&format!(
            ".oxbake/local/templates/{}-{}.qcow2",
            r.role, r.version
        ))
    };
    for r in b.iter().chain(&u) {
        project.write(
            template(r)
                .strip_prefix(project.root())
                .unwrap()
                .to_str()
                .unwrap(),
            "qcow2",
        );
    }
    let before = snapshot(&project.path("images"));

    let run = project.oxbake(&["prune", "--dry-run"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let out = run.stdout();
    let line = |id: String| {
        out.lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no line for {id} in\n{out}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line(u[1].id()), "would remove");
    assert_eq!(line(b[0].id()), "would remove");
    assert_eq!(line(u[0].id()), "keep channel `prod` points at it");
    assert_eq!(
        line(b[1].id()),
        format!("keep kept image `{}` was built from it", u[0].id())
    );
    assert_eq!(
        snapshot(&project.path("images")),
        before,
        "--dry-run changed images/"
    );
    assert!(template(&b[0]).exists());

    let run = project.oxbake(&["prune", "--json"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let removed: Vec<String> = doc["prune"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "removed")
        .map(|e| {
            format!(
                "{}@{}",
                e["role"].as_str().unwrap(),
                e["version"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(removed, [u[1].id(), b[0].id()]);
    for gone in [&u[1], &b[0]] {
        assert!(registry.get(&gone.role, &gone.version).is_err());
        assert!(!template(gone).exists());
    }
    for kept in [&u[0], &u[2], &u[3], &b[1], &b[2], &b[3]] {
        assert!(registry.get(&kept.role, &kept.version).is_ok());
        assert!(template(kept).exists());
    }
    let after = snapshot(&project.path("images"));
    assert_eq!(
        after["channels.toml"], before["channels.toml"],
        "history stays"
    );
}
