//! The local matrix's rows that need more than a signal: the state
//! folder's disk full (a small tmpfs mounted over it; the test runs as
//! root) and an interrupt while a missing base image is bootstrapped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::leftovers::{self, RegistrySnapshot};
use super::local::{BUILD, Fixture};
use super::runner::{Action, Invocation};
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
pub(super) fn bootstrap_interrupted(f: &Fixture, m: &mut Matrix) {
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
