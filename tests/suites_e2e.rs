//! Debian releases side by side on real builders: one command bakes a root
//! role on bookworm (the default) and one on trixie (`base = "trixie"`);
//! the trixie base image is bootstrapped on first use (mmdebstrap, root)
//! and kept beside bookworm's. Each role's check reads the release inside
//! its guest, `oxbake inputs` names the release, and the SBOM's package
//! URLs carry it. The bootstrap is once per machine (CI keeps the cache).
#![cfg(feature = "e2e")]

use std::path::PathBuf;
use std::time::Instant;

use crate::support::e2e::vm_lock;
use crate::support::figures::figure;
use crate::support::project::TestProject;
use crate::support::qemu::Reaper;

/// A root role whose check proves the release its guest runs.
fn release_role(role: &str, base: Option<&str>, codename: &str) -> String {
    let base = base
        .map(|b| format!("base = \"{b}\"\n"))
        .unwrap_or_default();
    format!(
        r#"role = "{role}"
description = "test role: a root role on {codename}"
{base}
[[step]]
name = "note the release"
kind = "shell"
run = ". /etc/os-release && echo \"$VERSION_CODENAME\" > /etc/oxbake-release"

[[check]]
name = "the guest runs {codename}"
run = "cat /etc/oxbake-release"
stdout_contains = ["{codename}"]
"#
    )
}

#[test]
fn a_bookworm_and_a_trixie_role_bake_side_by_side() {
    let _vms = vm_lock();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("suites-project");
    let project = TestProject::copy_to(&dir);
    let _reaper = Reaper(project.root().to_path_buf());
    project.keep_only_base();
    let config = project
        .read("oxbake.toml")
        .replace("accel = \"auto\"", "accel = \"tcg\"");
    project.write("oxbake.toml", &config);
    project.write(
        "recipes/rel12.toml",
        &release_role("rel12", None, "bookworm"),
    );
    project.write(
        "recipes/rel13.toml",
        &release_role("rel13", Some("trixie"), "trixie"),
    );

    let started = Instant::now();
    let build = project.oxbake(&["build", "rel12", "rel13", "--json"]);
    figure(format!(
        "suites e2e: a bookworm and a trixie root role baked in {:.0} s (with the trixie base's \
         bootstrap when the machine had none)",
        started.elapsed().as_secs_f64()
    ));
    assert_eq!(build.code(), 0, "{}", build.stderr());
    let report: serde_json::Value = serde_json::from_str(&build.stdout()).unwrap();
    let mut built: Vec<&str> = report["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "built")
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    built.sort();
    assert_eq!(built, ["rel12", "rel13"], "{report}");

    for (role, suite) in [("rel12", "bookworm"), ("rel13", "trixie")] {
        let inputs = project.oxbake(&["inputs", role, "--json"]);
        assert_eq!(inputs.code(), 0, "{}", inputs.stderr());
        let doc: serde_json::Value = serde_json::from_str(&inputs.stdout()).unwrap();
        assert_eq!(doc["suite"], suite, "{role}: {doc}");
        let sbom = project.oxbake(&["sbom", role]);
        assert_eq!(sbom.code(), 0, "{}", sbom.stderr());
        let qualifier = format!("?distro={suite}");
        assert!(
            sbom.stdout().contains(&qualifier),
            "{role}: no {qualifier} in its SBOM"
        );
    }

    // Both bases side by side in the cache, each its release's current one.
    let cache = oxbake::target::local::base::default_cache_dir().join("base");
    let link = |name: &str| {
        std::fs::read_link(cache.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .to_string_lossy()
            .into_owned()
    };
    assert!(
        link("current.qcow2").starts_with("debian-12-"),
        "{}",
        link("current.qcow2")
    );
    assert!(
        link("current-trixie.qcow2").starts_with("debian-13-"),
        "{}",
        link("current-trixie.qcow2")
    );
    drop(project);
    let _ = std::fs::remove_dir_all(&dir);
}
