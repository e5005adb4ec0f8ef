//! `oxbake build` on the local target with faults before SSH: signals while
//! the VM is created and while it boots, QEMU killed from outside, a guest
//! that never answers, and the state folder's disk full (a small tmpfs
//! mounted over it; the test runs as root). The base image is an empty
//! qcow2 imported with `oxbake base import` into a cache of the test's own,
//! so QEMU really runs (TCG) but no system ever boots: cheap, and no `e2e`
//! feature needed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::leftovers::{self, RegistrySnapshot};
use super::local_disk::{bootstrap_interrupted, disk_full};
use super::runner::{Action, Invocation, signal};
use super::table::{Matrix, row};
use crate::support::project::TestProject;

const TINY: &str = r#"role = "tiny"
description = "fault matrix: a root role with one tiny step"

[[step]]
name = "hello"
kind = "shell"
run = "true"
"#;

pub(super) const BUILD: &[&str] = &["build", "tiny"];

/// A project whose base image is an empty disk (see the module comment).
pub(super) struct Fixture {
    project: TestProject,
    cache: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let project = TestProject::copy();
        project.write("recipes/tiny.toml", TINY);
        leftovers::seed_registry(project.root());
        let cache = tempfile::tempdir().unwrap();
        let disk = cache.path().join("empty.qcow2");
        let made = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&disk)
            .arg("1G")
            .status()
            .unwrap();
        assert!(made.success(), "qemu-img create");
        let sha = sha256_hex(&std::fs::read(&disk).unwrap());
        let f = Self { project, cache };
        let disk = disk.to_string_lossy();
        let args = ["base", "import", &disk, "--sha256", &sha];
        let out = f.invocation(&args).run();
        assert_eq!(out.code, 0, "base import: {}", out.stderr);
        f
    }

    pub(super) fn configure(&self, boot_timeout: u64) {
        let config = self.project.read("oxbake.toml");
        let config: Vec<String> = config
            .lines()
            .map(|l| match l {
                l if l.starts_with("boot_timeout") => format!("boot_timeout = {boot_timeout}"),
                // The KVM probe costs 15 s a process and fails here.
                l if l.starts_with("accel") => "accel = \"tcg\"".to_owned(),
                l if l.starts_with("memory_mib") => "memory_mib = 256".to_owned(),
                l => l.to_owned(),
            })
            .collect();
        self.project.write("oxbake.toml", &config.join("\n"));
    }

    pub(super) fn root(&self) -> &Path {
        self.project.root()
    }

    pub(super) fn invocation<'a>(&'a self, args: &'a [&'a str]) -> Invocation<'a> {
        Invocation::new(self.root(), args)
            .env("OXBAKE_CACHE_DIR", &self.cache.path().to_string_lossy())
            .deadline(Duration::from_secs(180))
    }

    pub(super) fn templates(&self) -> Vec<String> {
        leftovers::names(&self.root().join(".oxbake/local/templates"))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

struct Case {
    fault: &'static str,
    step: &'static str,
    expected: i32,
    says: &'static [&'static str],
    boot_timeout: u64,
    trigger: Option<&'static str>,
    action: fn() -> Action<'static>,
}

fn kill_qemu_of(root: PathBuf) -> Action<'static> {
    Action::Call(
        Duration::from_secs(3),
        Box::new(move |_| {
            for pid in leftovers::qemu_pids(&root) {
                signal(pid, "KILL");
            }
        }),
    )
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            fault: "SIGINT while the VM is created",
            step: "create the builder VM",
            expected: 130,
            says: &["interrupted"],
            boot_timeout: 120,
            trigger: Some("create the builder VM"),
            action: || Action::Signal("INT", Duration::ZERO),
        },
        Case {
            fault: "SIGINT while the VM boots",
            step: "boot and connect over SSH",
            expected: 130,
            says: &["interrupted", "removed builder VM"],
            boot_timeout: 120,
            trigger: Some("boot and connect over SSH"),
            action: || Action::Signal("INT", Duration::from_secs(3)),
        },
        Case {
            fault: "SIGTERM while the VM boots",
            step: "boot and connect over SSH",
            expected: 130,
            says: &["interrupted", "removed builder VM"],
            boot_timeout: 120,
            trigger: Some("boot and connect over SSH"),
            action: || Action::Signal("TERM", Duration::from_secs(3)),
        },
        Case {
            fault: "the guest never answers on SSH",
            step: "boot and connect over SSH",
            expected: 1,
            says: &["SSH never answered", "removed builder VM"],
            boot_timeout: 8,
            trigger: None,
            action: || Action::Signal("INT", Duration::ZERO),
        },
    ]
}

fn run_cases(f: &Fixture, m: &mut Matrix) {
    for case in cases() {
        f.configure(case.boot_timeout);
        let templates = f.templates();
        let before = RegistrySnapshot::take(f.root());
        let mut run = f.invocation(BUILD);
        if let Some(trigger) = case.trigger {
            run = run.on(trigger, (case.action)());
        }
        let out = run.run();
        let left = leftovers::local(f.root(), &templates);
        leftovers::reap(f.root());
        m.push(row(
            case.fault,
            case.step,
            case.expected,
            case.says,
            &out,
            left,
            &before,
            f.root(),
        ));
    }
}

fn qemu_killed(f: &Fixture, m: &mut Matrix) {
    f.configure(30);
    let templates = f.templates();
    let before = RegistrySnapshot::take(f.root());
    let out = f
        .invocation(BUILD)
        .on(
            "boot and connect over SSH",
            kill_qemu_of(f.root().to_path_buf()),
        )
        .run();
    let left = leftovers::local(f.root(), &templates);
    leftovers::reap(f.root());
    m.push(row(
        "QEMU killed (-9) while the VM boots",
        "boot and connect over SSH",
        1,
        &["removed builder VM"],
        &out,
        left,
        &before,
        f.root(),
    ));
}

#[test]
fn fault_matrix_on_the_local_target() {
    let f = Fixture::new();
    let mut m = Matrix::new("oxbake build on the local target (no guest system)");
    run_cases(&f, &mut m);
    qemu_killed(&f, &mut m);
    disk_full(&f, &mut m);
    bootstrap_interrupted(&f, &mut m);
    leftovers::reap(f.root());
    m.finish();
}
