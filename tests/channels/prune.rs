//! `oxbake prune` on the local target with a hand-made registry.

use oxbake::registry::Registry;

use super::{Img, record, snapshot};
use crate::support::project::TestProject;

type Records = Vec<oxbake::registry::ImageRecord>;

/// A project that keeps two versions per role, four base records and one
/// ui record on each base of `parents` (indices into the base records).
fn keep_two_of(parents: &[usize]) -> (TestProject, Registry, Records, Records) {
    let project = TestProject::copy();
    let config = project.read("oxbake.toml").replace("keep = 5", "keep = 2");
    project.write("oxbake.toml", &config);
    let registry = Registry::for_project(project.root());
    let b: Vec<_> = (0..4)
        .map(|_| record(&registry, "base", Img::root()))
        .collect();
    let u: Vec<_> = parents
        .iter()
        .map(|&p| record(&registry, "ui", Img::child_of(&b[p])))
        .collect();
    (project, registry, b, u)
}

#[test]
fn prune_dry_run_changes_nothing_then_prune_removes_records_and_templates() {
    let (project, registry, b, u) = keep_two_of(&[1, 2, 3, 3]);
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
        local_template(&project, r);
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

/// The local template a build of `r` would have made: the disk and its
/// metadata (name, the record's sha256, the builder's labels).
pub fn local_template(project: &TestProject, r: &oxbake::registry::ImageRecord) {
    let name = format!("{}-{}", r.role, r.version);
    let dir = ".oxbake/local/templates";
    project.write(&format!("{dir}/{name}.qcow2"), "qcow2");
    let oxbake::registry::Artifact::Local { sha256, .. } = &r.artifact else {
        panic!("local artifact")
    };
    project.write(
        &format!("{dir}/{name}.toml"),
        &format!(
            "name = \"{name}\"\nsha256 = \"{sha256}\"\nbacking = \"/base.qcow2\"\n\
             created = \"2026-12-01T00:00:00Z\"\n\n[labels]\nrun_id = \"r1\"\n\
             role = \"{}\"\nkind = \"builder\"\n",
            r.role
        ),
    );
}

#[test]
fn local_prune_keeps_a_template_another_record_claims_or_whose_metadata_differs() {
    let project = TestProject::copy();
    let config = project.read("oxbake.toml").replace("keep = 5", "keep = 1");
    project.write("oxbake.toml", &config);
    let registry = Registry::for_project(project.root());
    let old = record(&registry, "ui", Img::root());
    let other = record(&registry, "ui", Img::root());
    let prod = record(&registry, "ui", Img::root());
    for r in [&old, &other, &prod] {
        local_template(&project, r);
    }
    registry
        .set_channel("ui", "prod", &prod.version, "alice", "release")
        .unwrap();
    // `old` is edited to claim prod's file; `other`'s template metadata
    // names another sha256 than its record.
    let path = format!("images/ui/{}.toml", old.version);
    let text = project.read(&path).replace(
        &format!("ui-{}.qcow2", old.version),
        &format!("ui-{}.qcow2", prod.version),
    );
    project.write(&path, &text);
    let meta = format!(".oxbake/local/templates/ui-{}.toml", other.version);
    let text = project
        .read(&meta)
        .replace(&"a".repeat(64), &"d".repeat(64));
    project.write(&meta, &text);

    for args in [&["prune", "--dry-run"][..], &["prune"]] {
        let run = project.oxbake(args);
        assert_eq!(run.code(), 1, "{args:?}: {}", run.stderr());
        let out = run.stdout();
        let line = |id: String| out.lines().find(|l| l.starts_with(&id)).unwrap().to_owned();
        let l = line(old.id());
        assert!(
            l.contains("failed") && l.contains(&format!("also claimed by `{}`", prod.id())),
            "{l}"
        );
        let l = line(other.id());
        assert!(
            l.contains("failed") && l.contains("its metadata's sha256 is"),
            "{l}"
        );
    }
    for r in [&old, &other, &prod] {
        assert!(registry.get(&r.role, &r.version).is_ok());
        let disk = project.path(&format!(".oxbake/local/templates/ui-{}.qcow2", r.version));
        assert!(disk.exists(), "{}", disk.display());
    }
}

/// `prune --dry-run`, `ls` and `show` say the same whether the summaries
/// index (`.oxbake/registry/`) is missing, used, stale or corrupt.
#[test]
fn prune_ls_and_show_read_the_same_through_the_index() {
    let (project, registry, b, u) = keep_two_of(&[0, 1, 2, 3]);
    for (channel, version) in [("dev", &u[1]), ("prod", &u[0]), ("dev", &u[3])] {
        registry
            .set_channel("ui", channel, &version.version, "alice", "release")
            .unwrap();
    }
    for r in b.iter().chain(&u) {
        local_template(&project, r);
    }
    let reads = |what: &str| {
        let show = u[0].id();
        [
            &["prune", "--dry-run", "--json"][..],
            &["ls", "--json"],
            &["show", &show, "--json"],
        ]
        .map(|args| {
            let run = project.oxbake(args);
            assert_eq!(run.code(), 0, "{what}: {args:?}: {}", run.stderr());
            run.stdout()
        })
    };
    let index = project.path(".oxbake/registry/ui.json");
    // The index trusts only records that had settled when it was made.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let without = reads("no index yet");
    let made = std::fs::read(&index).expect("the first prune made the index");
    assert_eq!(reads("index used"), without);
    assert_eq!(
        std::fs::read(&index).unwrap(),
        made,
        "nothing was parsed again"
    );

    std::fs::write(&index, "{ torn").unwrap();
    assert_eq!(reads("corrupt index"), without);
    assert_ne!(std::fs::read(&index).unwrap(), b"{ torn");

    // Stale: a record revoked after the index was made.
    registry
        .revoke("ui", &u[2].version, "CVE-2026-1", "alice")
        .unwrap();
    let stale = reads("stale index");
    std::fs::remove_dir_all(project.path(".oxbake/registry")).unwrap();
    assert_eq!(reads("no index again"), stale);
    assert!(stale[1].contains("CVE-2026-1"), "{}", stale[1]);
}
