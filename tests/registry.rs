//! Several oxbake processes change one registry at the same time: none of
//! their records or channel changes may be lost, and every file must parse.
//!
//! The writers are real processes: this test binary runs itself again with
//! just the `child_writer` test, which does its work only when
//! `OXBAKE_TEST_REGISTRY_DIR` tells it where the registry is.

use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::fs;
use std::path::Path;
use std::process::{Child, Command};

use oxbake::registry::{Artifact, CheckResult, ImageRecord, NewImage, Registry};

const DIR_VAR: &str = "OXBAKE_TEST_REGISTRY_DIR";
const WRITER_VAR: &str = "OXBAKE_TEST_REGISTRY_WRITER";
const COUNT_VAR: &str = "OXBAKE_TEST_REGISTRY_COUNT";
const WRITERS: usize = 4;
const PER_WRITER: usize = 12;
const ROLE: &str = "shared";

#[test]
fn concurrent_processes_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<Child> = (0..WRITERS)
        .map(|id| spawn_writer(dir.path(), id))
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "writer failed: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let registry = Registry::new(dir.path());
    let records = registry.records(ROLE).unwrap();
    assert_every_record_is_there(&records);
    assert_history_is_complete(&registry);
    assert_no_temporary_files(dir.path());
}

/// The body of one writer process; a no-op unless a parent started it.
#[test]
#[ignore = "runs only as a child process of concurrent_processes_lose_no_update"]
fn child_writer() {
    let Ok(dir) = env::var(DIR_VAR) else {
        return;
    };
    let id: usize = env::var(WRITER_VAR).unwrap().parse().unwrap();
    let count: usize = env::var(COUNT_VAR).unwrap().parse().unwrap();
    let registry = Registry::new(dir);
    let who = format!("writer-{id}");
    for i in 0..count {
        let record = registry.record(ROLE, image(id, i)).unwrap();
        let why = format!("{id}-{i}");
        for channel in ["dev".to_string(), format!("own-{id}")] {
            let change = registry
                .set_channel(ROLE, &channel, &record.version, &who, &why)
                .unwrap();
            assert!(change.changed);
        }
    }
}

fn spawn_writer(dir: &Path, id: usize) -> Child {
    Command::new(env::current_exe().unwrap())
        .args(["--exact", "registry::child_writer", "--include-ignored"])
        .args(["--nocapture", "--test-threads=1"])
        .env(DIR_VAR, dir)
        .env(WRITER_VAR, id.to_string())
        .env(COUNT_VAR, PER_WRITER.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// A record that names its writer and step in its package manifest.
fn image(id: usize, i: usize) -> NewImage {
    let hex = |c: char| c.to_string().repeat(64).parse().unwrap();
    NewImage {
        inputs: hex('a'),
        parent: "base-image:debian-12-test".parse().unwrap(),
        target: "local".into(),
        artifact: Artifact::Local {
            path: format!("/images/{id}-{i}.qcow2").into(),
            sha256: hex('b'),
        },
        repositories: BTreeMap::new(),
        packages: BTreeMap::from([("writer".into(), format!("{id}-{i}"))]),
        checks: vec![CheckResult {
            name: "step".into(),
            command: "true".into(),
            passed: true,
            detail: String::new(),
        }],
        builder: None,
        size: None,
    }
}

fn all_steps() -> BTreeSet<String> {
    (0..WRITERS)
        .flat_map(|id| (0..PER_WRITER).map(move |i| format!("{id}-{i}")))
        .collect()
}

fn assert_every_record_is_there(records: &[ImageRecord]) {
    let written: BTreeSet<String> = records
        .iter()
        .map(|r| r.packages["writer"].clone())
        .collect();
    assert_eq!(records.len(), WRITERS * PER_WRITER);
    assert_eq!(written, all_steps());
    let versions: BTreeSet<_> = records.iter().map(|r| r.version).collect();
    assert_eq!(
        versions.len(),
        records.len(),
        "a version was allocated twice"
    );
}

fn assert_history_is_complete(registry: &Registry) {
    let channels = registry.channels().unwrap();
    assert_eq!(channels.history.len(), 2 * WRITERS * PER_WRITER);
    let mut channel_names = vec!["dev".to_string()];
    channel_names.extend((0..WRITERS).map(|id| format!("own-{id}")));
    for channel in channel_names {
        let history: Vec<_> = channels.history_of(ROLE, &channel).collect();
        // Each change saw the one before it: no read-modify-write was lost.
        let mut previous = None;
        for entry in &history {
            assert_eq!(entry.from, previous, "channel `{channel}` lost an update");
            previous = Some(entry.to);
        }
        assert_eq!(channels.get(&channel, ROLE), previous);
    }
    let dev: BTreeSet<String> = channels
        .history_of(ROLE, "dev")
        .map(|e| e.why.clone())
        .collect();
    assert_eq!(dev, all_steps());
}

fn assert_no_temporary_files(dir: &Path) {
    for entry in fs::read_dir(dir)
        .unwrap()
        .chain(fs::read_dir(dir.join(ROLE)).unwrap())
    {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.starts_with(".oxbake-"),
            "temporary file {name} left behind"
        );
    }
}

#[test]
fn the_next_writer_removes_what_a_killed_writer_left_and_git_ignores_it() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path());
    let first = registry.record(ROLE, image(0, 0)).unwrap();
    // A write killed before its rename, in the registry and in a role's
    // folder, and a prune killed after removing a record but not its marker.
    let stale = [
        dir.path().join(".oxbake-kill1.tmp"),
        dir.path().join(ROLE).join(".oxbake-kill2.tmp"),
        dir.path().join(ROLE).join("2020.01.01.1.pruning"),
    ];
    for path in &stale {
        fs::write(path, "half").unwrap();
    }
    // A marker whose record is still there is not stale: `ls` reports it.
    let live = dir
        .path()
        .join(ROLE)
        .join(format!("{}.pruning", first.version));
    fs::write(&live, "marked").unwrap();
    registry
        .set_channel(ROLE, "dev", &first.version, "t", "x")
        .unwrap_err();
    // Refusing (the image is being removed) was still a writer's turn.
    for path in &stale {
        assert!(!path.exists(), "{} left behind", path.display());
    }
    assert!(live.exists());
    fs::remove_file(&live).unwrap();
    assert_no_temporary_files(dir.path());

    for path in ["images/ui/.oxbake-a1B2c3.tmp", "images/.oxbake-Zz9.tmp"] {
        let status = Command::new("git")
            .args(["check-ignore", "-q", path])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "git does not ignore {path}");
    }
    let status = Command::new("git")
        .args(["check-ignore", "-q", "images/ui/2026.01.01.1.toml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(!status.success(), "records must not be ignored");
}
