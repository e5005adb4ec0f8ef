//! The package cache on real builders: once the shared fixture has baked
//! base (and ui) through it, a bake of base in another project fetches no
//! package from Debian's archive, and the template holds no proxy setting
//! (the build's own offline inspection proves it absent). The figures (bytes
//! from outside and from the cache, the common-packages step of both bakes)
//! go to figures.txt.
#![cfg(feature = "e2e")]

use std::path::Path;

use oxbake::registry::Registry;

use crate::support::e2e::{baked, vm_lock};
use crate::support::figures::figure;
use crate::support::project::TestProject;

/// The `base: apt: …` line of a build's output.
fn apt_line(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| l.contains("base: apt: "))
        .map(|l| l.trim().to_owned())
        .unwrap_or_else(|| panic!("no apt figures:\n{stderr}"))
}

/// Seconds the newest base record's `common packages` step took.
fn common_packages_secs(root: &Path) -> f64 {
    let registry = Registry::for_project(root);
    let record = registry
        .latest("base", true)
        .unwrap()
        .expect("a base record");
    let step = record
        .timings
        .iter()
        .find(|t| t.phase.ends_with(": common packages"))
        .unwrap_or_else(|| panic!("no common packages timing in {:?}", record.timings));
    step.millis as f64 / 1000.0
}

#[test]
fn a_second_bake_of_base_fetches_no_package_from_outside() {
    let fixture = baked();
    let first = apt_line(&fixture.build.stderr());
    let first_step = common_packages_secs(fixture.project.root());
    let _vms = vm_lock();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-aptcache");
    let project = TestProject::copy_to(&dir);
    let config = project
        .read("oxbake.toml")
        .replace("accel = \"auto\"", "accel = \"tcg\"");
    project.write("oxbake.toml", &config);
    let run = project.oxbake(&["build", "base"]);
    let err = run.stderr();
    assert_eq!(run.code(), 0, "{err}");
    let second = apt_line(&err);
    let second_step = common_packages_secs(project.root());
    figure(format!("first bake of base: {first}"));
    figure(format!("second bake of base: {second}"));
    figure(format!(
        "base's common packages step: {first_step:.0} s in the first bake, {second_step:.0} s in the second"
    ));
    assert!(second.contains("apt: 0 B from outside"), "{second}");
    assert!(!second.contains(", 0 B from cache (indices"), "{second}");
    drop(project);
    let _ = std::fs::remove_dir_all(&dir);
}
