//! The local matrix's rows that need more than a signal: the state
//! folder's disk full (a small tmpfs mounted over it; the test runs as
//! root) and an interrupt while a missing base image is bootstrapped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::leftovers::{self, RegistrySnapshot};
use super::local::{BUILD, Fixture};
use super::runner::{Action, Invocation, signal};
use super::table::{Matrix, row};

/// A tmpfs of `size` over `dir` (created first), unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Self {
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

/// The state disk full at three depths: no room for the log, for the
/// overlay, for the seed ISO.
pub(super) fn disk_full(f: &Fixture, m: &mut Matrix) {
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

/// Waits until something is mounted under `dir` (or `limit` passes); the
/// mount point if one was.
fn wait_for_mount_under(dir: &Path, limit: Duration) -> Option<String> {
    let needle = dir.to_string_lossy().into_owned();
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        if let Some(line) = mounts.lines().find(|l| l.contains(&needle)) {
            return line.split(' ').nth(1).map(str::to_owned);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
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

/// SIGINT while `oxbake build` bootstraps a missing base image, at the
/// worst moment: mmdebstrap has file systems mounted in the root it builds
/// (regressions: its workers outlived oxbake, oxbake died by the signal,
/// and a devpts mount kept the work folder; a fixed delay hit that moment
/// only on some machines).
pub(super) fn bootstrap_interrupted(f: &Fixture, m: &mut Matrix) {
    f.configure(30);
    let cache = tempfile::tempdir().unwrap();
    let before = RegistrySnapshot::take(f.root());
    let watched = cache.path().to_path_buf();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen_by_action = seen.clone();
    let out = Invocation::new(f.root(), BUILD)
        .env("OXBAKE_CACHE_DIR", &cache.path().to_string_lossy())
        .on(
            "mmdebstrap:",
            Action::Call(
                Duration::ZERO,
                Box::new(move |pid| {
                    let mount = wait_for_mount_under(&watched, Duration::from_secs(150));
                    *seen_by_action.lock().unwrap() = mount;
                    signal(pid, "INT");
                }),
            ),
        )
        .deadline(Duration::from_secs(240))
        .run();
    std::thread::sleep(Duration::from_secs(1));
    let mut left = processes_of(cache.path());
    if seen.lock().unwrap().is_none() {
        // Not a leftover, but the row did not test what it says.
        left.push("test: mmdebstrap mounted nothing in 150 s".to_owned());
    }
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

/// A root role whose one step prints a line every 0.2 s for two minutes.
#[cfg(feature = "e2e")]
const CHATTY: &str = r#"role = "glog"
description = "fault matrix: a step that keeps printing"

[[step]]
name = "glog step"
kind = "shell"
run = '''for i in $(seq 1 600); do echo "glog line $i"; sleep 0.2; done'''
"#;

/// Fills the file system of `dir` with one file until it is full.
#[cfg(feature = "e2e")]
fn fill(dir: &Path) {
    use std::io::Write;
    let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 64 * 1024];
    while filler.write_all(&block).is_ok() {}
}

/// The disk of the build log full while a step runs and prints (one boot):
/// the build stops, names the log and the cause, and removes the builder.
/// The tmpfs holds `.oxbake/logs` only, so the VM's own disk still works
/// and only the log fails.
#[cfg(feature = "e2e")]
#[test]
fn fault_matrix_log_disk_full_during_a_step() {
    use crate::support::e2e::vm_lock;
    use crate::support::project::TestProject;
    let _vms = vm_lock();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-logdisk-project");
    let project = TestProject::copy_to(&dir);
    let config = project
        .read("oxbake.toml")
        .replace("accel = \"auto\"", "accel = \"tcg\"");
    project.write("oxbake.toml", &config);
    project.write("recipes/glog.toml", CHATTY);
    leftovers::seed_registry(project.root());
    let root = project.root();
    let logs = root.join(".oxbake/logs");
    let templates = leftovers::names(&root.join(".oxbake/local/templates"));
    let before = RegistrySnapshot::take(root);
    let mount = Tmpfs::mount(&logs, "1m");
    let filled = logs.clone();
    let out = Invocation::new(root, &["build", "glog"])
        .on(
            "glog: step 1/1: glog step",
            Action::Call(Duration::from_secs(3), Box::new(move |_| fill(&filled))),
        )
        .deadline(Duration::from_secs(900))
        .run();
    let left = leftovers::local(root, &templates);
    leftovers::reap(root);
    drop(mount);
    let log_named = format!("cannot write the build log `{}/glog-", logs.display());
    let mut m = Matrix::new("oxbake build on the local target, the log's disk full");
    m.push(row(
        "log disk full while a step prints",
        "step 1/1",
        1,
        &[&log_named, "No space left on device", "removed builder VM"],
        &out,
        left,
        &before,
        root,
    ));
    drop(project);
    let _ = std::fs::remove_dir_all(&dir);
    m.finish();
}
