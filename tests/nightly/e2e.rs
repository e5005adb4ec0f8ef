//! The nightly acceptance runs on the local target, in a project of their
//! own: base comes from the shared fixture (its registry record and its
//! template, linked), two small test roles are baked on it, then a no-op
//! nightly and a nightly after a one-byte template change run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use oxbake::registry::Registry;
use serde_json::Value;

use crate::support::e2e::{baked, vm_lock};
use crate::support::figures::figure;
use crate::support::project::{Run, TestProject};
use crate::support::qemu::Reaper;

const PROBE: &str = r#"role = "nprobe"
description = "test role: one small template"
from = "base"

[[step]]
name = "marker"
kind = "template"
source = "nightly/marker.j2"
dest = "/etc/oxbake-nightly-marker"
mode = "0644"

[[check]]
name = "marker placed"
run = "cat /etc/oxbake-nightly-marker"
stdout_contains = ["nightly"]
"#;

const CHILD: &str = r#"role = "nchild"
description = "test role: a child of nprobe"
from = "nprobe"

[[step]]
name = "second marker"
kind = "shell"
run = "cp /etc/oxbake-nightly-marker /etc/oxbake-nightly-child"
"#;

/// A project with base (from the fixture), nprobe and nchild.
fn project() -> TestProject {
    let fixture = &baked().project;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("nightly-project");
    let project = TestProject::copy_to(&dir);
    // The fixture's settings (its accelerator), only base of its roles.
    project.write("oxbake.toml", &fixture.read("oxbake.toml"));
    project.keep_only_base();
    project.write("recipes/nprobe.toml", PROBE);
    project.write("recipes/nchild.toml", CHILD);
    project.write("templates/nightly/marker.j2", "nightly {{ role }}\n");
    crate::support::project::copy_tree(&fixture.path("images/base"), &project.path("images/base"));
    let templates = project.path(".oxbake/local/templates");
    std::fs::create_dir_all(&templates).unwrap();
    for entry in std::fs::read_dir(fixture.path(".oxbake/local/templates")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with("base-") {
            std::os::unix::fs::symlink(entry.path(), templates.join(entry.file_name())).unwrap();
        }
    }
    project
}

/// Puts the newest version of each role in `dev` (no smoke test: these
/// images were baked and checked by this test).
fn into_dev(project: &TestProject, roles: &[&str]) {
    let registry = Registry::for_project(project.root());
    for role in roles {
        let latest = registry.latest(role, true).unwrap().unwrap();
        registry
            .set_channel(role, "dev", &latest.version, "test", "set up by the test")
            .unwrap();
    }
}

/// Every file under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                todo.push(entry.path());
            }
            files.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    files
}

fn report(run: &Run) -> Value {
    serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("{e}\nstdout:\n{}\nstderr:\n{}", run.stdout(), run.stderr()))
}

/// `role -> decision[/reason]` of a report.
fn decisions(doc: &Value) -> BTreeMap<String, String> {
    let roles = doc["roles"].as_array().unwrap();
    roles
        .iter()
        .map(|r| {
            let d = &r["decision"];
            let text = match d["reason"].as_str() {
                Some(reason) => format!("{}/{reason}", d["decision"].as_str().unwrap()),
                None => d["decision"].as_str().unwrap().to_owned(),
            };
            (r["role"].as_str().unwrap().to_owned(), text)
        })
        .collect()
}

#[test]
fn nightly_does_nothing_when_nothing_changed_and_rebuilds_a_changed_role_with_children() {
    let project = project();
    let _vms = vm_lock();
    let _reaper = Reaper(project.root().to_path_buf());
    let build = project.oxbake(&["build", "nprobe", "nchild", "--json"]);
    assert_eq!(build.code(), 0, "{}", build.stderr());
    into_dev(&project, &["base", "nprobe", "nchild"]);

    // Debian's archive moves on its own (the security suite publishes
    // several times a day): if it did since base was baked, this nightly
    // rightly rebuilds base and its children, and the one after it has
    // nothing to do. Any other rebuild fails the test.
    let upstream = project.oxbake(&["nightly", "--plan", "--json"]);
    assert_eq!(upstream.code(), 0, "{}", upstream.stderr());
    let planned = decisions(&report(&upstream));
    if planned.get("base").map(String::as_str) == Some("rebuild/repository_changed") {
        eprintln!("nightly e2e: Debian's archive moved since base was baked: {planned:?}");
        let caught_up = project.oxbake(&["nightly", "--json"]);
        assert_eq!(caught_up.code(), 0, "{}", caught_up.stderr());
    }
    let counted = |role: &str| {
        let registry = Registry::for_project(project.root());
        registry.versions(role).unwrap().len()
    };
    let (bases, probes, children) = (counted("base"), counted("nprobe"), counted("nchild"));
    let before = (
        snapshot(&project.path(".oxbake")),
        snapshot(&project.path("images")),
    );
    let started = Instant::now();
    let noop = project.oxbake(&["nightly", "--json"]);
    let elapsed = started.elapsed();
    figure(format!(
        "nightly with nothing changed: {:.3}s",
        elapsed.as_secs_f64()
    ));
    assert_eq!(noop.code(), 0, "{}\n{}", noop.stdout(), noop.stderr());
    let doc = report(&noop);
    for (role, decision) in decisions(&doc) {
        assert_eq!(decision, "up_to_date", "{role}: {doc}");
    }
    let after = (
        snapshot(&project.path(".oxbake")),
        snapshot(&project.path("images")),
    );
    assert_eq!(
        before, after,
        "a no-op nightly changed the state or the registry"
    );

    let template = project.path("templates/nightly/marker.j2");
    let mut text = std::fs::read(&template).unwrap();
    text.push(b'!');
    std::fs::write(&template, text).unwrap();
    let started = Instant::now();
    let changed = project.oxbake(&["nightly", "--json"]);
    figure(format!(
        "nightly after a one-byte change: {:.0}s",
        started.elapsed().as_secs_f64()
    ));
    eprintln!("{}", changed.stderr());
    assert_eq!(
        changed.code(),
        0,
        "{}\n{}",
        changed.stdout(),
        changed.stderr()
    );
    let doc = report(&changed);
    let expected = BTreeMap::from([
        ("base".to_owned(), "up_to_date".to_owned()),
        ("nprobe".to_owned(), "rebuild/inputs_changed".to_owned()),
        ("nchild".to_owned(), "rebuild/parent_rebuilt".to_owned()),
    ]);
    assert_eq!(decisions(&doc), expected, "{doc}");
    let registry = Registry::for_project(project.root());
    let channels = registry.channels().unwrap();
    for (role, before) in [("nprobe", probes), ("nchild", children)] {
        let versions = registry.versions(role).unwrap();
        assert_eq!(versions.len(), before + 1, "{role}: {versions:?}");
        assert_eq!(
            channels.get("dev", role),
            versions.last().copied(),
            "{role}"
        );
    }
    assert_eq!(registry.versions("base").unwrap().len(), bases);
}
