//! `accel = "auto"` on a real host: two builds in a row with a cache folder
//! of their own (the base image linked from the shared one). The first
//! decides the accelerator at its first VM start (on a host where KVM does
//! not work, by a guest that prints nothing under it); the second reads the
//! verdict kept for this boot and starts at once. Each build is interrupted
//! as soon as it has said which accelerator it uses, so the test costs two
//! short boots, not two bakes.
#![cfg(feature = "e2e")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::e2e::vm_lock;
use crate::support::figures::figure;
use crate::support::project::TestProject;
use crate::support::qemu::Reaper;

/// Runs `oxbake build base` until it says which accelerator it uses, then
/// interrupts it; the line and the seconds it took to come.
fn until_the_accelerator_line(root: &Path, cache: &Path) -> (String, f64) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_oxbake"))
        .arg("-C")
        .arg(root)
        .args(["build", "base"])
        .env("OXBAKE_CACHE_DIR", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start oxbake");
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut found = None;
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if found.is_none() && line.contains("accelerator: ") {
            found = Some((line.trim().to_owned(), started.elapsed().as_secs_f64()));
            let status = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
        }
        seen.push(line);
    }
    let status = wait_or_kill(&mut child, Duration::from_secs(120));
    let Some(found) = found else {
        panic!("no accelerator line ({status:?}):\n{}", seen.join("\n"));
    };
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(130),
        "{}",
        seen.join("\n")
    );
    found
}

/// Waits up to `limit` for `child`, then kills it.
fn wait_or_kill(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().ok()? {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    None
}

#[test]
fn the_kvm_verdict_is_decided_once_per_host_boot() {
    let shared = oxbake::target::local::base::default_cache_dir();
    assert!(
        oxbake::target::local::base_meta::base_dir(&shared).is_dir(),
        "a base image in the shared cache (the e2e fixture bootstraps it)"
    );
    let _vms = vm_lock();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-accel");
    let project = TestProject::copy_to(&dir);
    let _reaper = Reaper(project.root().to_path_buf());
    let config = project.read("oxbake.toml");
    assert!(config.contains("accel = \"auto\""), "{config}");
    let cache = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        oxbake::target::local::base_meta::base_dir(&shared),
        oxbake::target::local::base_meta::base_dir(cache.path()),
    )
    .unwrap();

    let (first, first_secs) = until_the_accelerator_line(project.root(), cache.path());
    assert!(!first.contains("cached in"), "a new cache folder: {first}");
    let (second, second_secs) = until_the_accelerator_line(project.root(), cache.path());
    figure(format!(
        "accel = auto, two builds in a row: {first_secs:.1} s to the accelerator line ({first}), \
         then {second_secs:.1} s ({second})"
    ));
    let probed = first.contains("falling back") || first.contains("a guest kernel runs under it");
    if probed {
        assert!(second.contains("on this boot; cached in"), "{second}");
        // The probe watches a guest for 15 s; the second build has no
        // guest to watch before its line.
        assert!(
            second_secs < first_secs,
            "{first_secs} s, then {second_secs} s"
        );
    } else {
        // No /dev/kvm at all: nothing to probe, nothing to keep.
        assert_eq!(first, second);
    }
    drop(project);
    let _ = std::fs::remove_dir_all(&dir);
}
