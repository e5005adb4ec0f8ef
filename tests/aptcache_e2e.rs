//! The package cache on real builders: once the shared fixture has baked
//! base (and ui) through it, a bake of base in another project fetches no
//! package from Debian's archive, and the template holds no proxy setting
//! (the build's own offline inspection proves it absent).
#![cfg(feature = "e2e")]
#![allow(clippy::print_stderr)]

use std::time::Instant;

use crate::support::e2e::{baked, vm_lock};
use crate::support::project::TestProject;

#[test]
fn a_second_bake_of_base_fetches_no_package_from_outside() {
    let fixture = baked();
    let first = fixture
        .build
        .stderr()
        .lines()
        .find(|l| l.contains("base: apt: "))
        .map(str::to_owned);
    eprintln!("first bake of base: {first:?}");
    let _vms = vm_lock();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-aptcache");
    let _ = std::fs::remove_dir_all(&dir);
    let project = TestProject::copy_to(&dir);
    let config = project
        .read("oxbake.toml")
        .replace("accel = \"auto\"", "accel = \"tcg\"");
    project.write("oxbake.toml", &config);
    let started = Instant::now();
    let run = project.oxbake(&["build", "base"]);
    let err = run.stderr();
    assert_eq!(run.code(), 0, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("base: apt: "))
        .unwrap_or_else(|| panic!("no apt figures:\n{err}"));
    eprintln!(
        "second bake of base ({:.0}s): {line}",
        started.elapsed().as_secs_f64()
    );
    assert!(line.contains("apt: 0 B from outside"), "{line}");
    assert!(!line.contains(", 0 B from cache (indices"), "{line}");
    let _ = std::fs::remove_dir_all(&dir);
}
