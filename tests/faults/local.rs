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
use super::runner::{Action, Invocation, signal};
use super::sim::row;
use super::table::Matrix;
use crate::support::project::TestProject;

const TINY: &str = r#"role = "tiny"
description = "fault matrix: a root role with one tiny step"

[[step]]
name = "hello"
kind = "shell"
run = "true"
"#;

const BUILD: &[&str] = &["build", "tiny"];

/// A project whose base image is an empty disk (see the module comment).
struct Fixture {
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

    fn configure(&self, boot_timeout: u64) {
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

    fn root(&self) -> &Path {
        self.project.root()
    }

    fn invocation<'a>(&'a self, args: &'a [&'a str]) -> Invocation<'a> {
        Invocation::new(self.root(), args)
            .env("OXBAKE_CACHE_DIR", &self.cache.path().to_string_lossy())
            .deadline(Duration::from_secs(180))
    }

    fn templates(&self) -> Vec<String> {
        leftovers::names(&self.root().join(".oxbake/local/templates"))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A tmpfs of `size` over `dir` (created first), unmounted on drop.
pub(super) struct Tmpfs(PathBuf);

impl Tmpfs {
    pub(super) fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mount a tmpfs on {} (needs root)",
            dir.display()
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
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

/// The state disk full at three depths: no room for the log, for the
/// overlay, for the seed ISO.
fn disk_full(f: &Fixture, m: &mut Matrix) {
    f.configure(30);
    let cases: [(&str, &str, &str, &str); 3] = [
        (
            "state disk full: no room at all",
            ".oxbake",
            "4k",
            "No space left",
        ),
        (
            "state disk full: no room for the overlay",
            ".oxbake/local",
            "64k",
            "No space left",
        ),
        (
            "state disk full: no room for the seed",
            ".oxbake/local",
            "400k",
            "cannot attach cloud-init data",
        ),
    ];
    for (fault, dir, size, says) in cases {
        let templates = f.templates();
        let before = RegistrySnapshot::take(f.root());
        let mount = Tmpfs::mount(&f.root().join(dir), size);
        let out = f.invocation(BUILD).run();
        let left = leftovers::local(f.root(), &templates);
        leftovers::reap(f.root());
        drop(mount);
        m.push(row(
            fault,
            "create the builder VM",
            1,
            &[says],
            &out,
            left,
            &before,
            f.root(),
        ));
    }
}

/// Processes whose command line mentions `needle`.
fn processes_of(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    leftovers::names(Path::new("/proc"))
        .into_iter()
        .filter(|pid| pid.chars().all(|c| c.is_ascii_digit()) && *pid != me)
        .filter_map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            cmd.contains(&needle)
                .then(|| format!("process {pid}: {cmd:.80}"))
        })
        .collect()
}

/// SIGINT while `oxbake build` bootstraps a missing base image (regression:
/// mmdebstrap's workers outlived oxbake, and oxbake died by the signal).
fn bootstrap_interrupted(f: &Fixture, m: &mut Matrix) {
    f.configure(30);
    let cache = tempfile::tempdir().unwrap();
    let before = RegistrySnapshot::take(f.root());
    let out = Invocation::new(f.root(), BUILD)
        .env("OXBAKE_CACHE_DIR", &cache.path().to_string_lossy())
        .on("mmdebstrap:", Action::Signal("INT", Duration::from_secs(8)))
        .deadline(Duration::from_secs(120))
        .run();
    std::thread::sleep(Duration::from_secs(1));
    let mut left = processes_of(cache.path());
    left.extend(
        leftovers::names(&cache.path().join("base"))
            .into_iter()
            .filter(|n| n != ".lock")
            .map(|n| format!("cache file {n}")),
    );
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let needle = cache.path().to_string_lossy().into_owned();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_owned),
    );
    m.push(row(
        "SIGINT while the base image is bootstrapped",
        "open the target",
        130,
        &["interrupted"],
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
