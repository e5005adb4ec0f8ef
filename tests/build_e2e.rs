//! End-to-end builds on the local target: real QEMU guests, real cloud-init,
//! real apt. `base` and `ui` are baked once (see support::e2e) and shared.
#![cfg(feature = "e2e")]
#![allow(clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use oxbake::guest::SshConnector;
use oxbake::pipeline::Context;
use oxbake::pipeline::artifact::template_of;
use oxbake::pipeline::smoke::Smoke;
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::Registry;
use oxbake::suite::Suite;
use oxbake::target::BaseIdentities;
use oxbake::target::local::{AccelMode, LocalTarget, base, base_meta};

use crate::support::e2e::{baked, spawn_oxbake, vm_lock};
use crate::support::figures::figure;
use crate::support::qemu::{Reaper, qemu_pids};

#[test]
fn base_then_ui_are_baked_and_two_clones_of_ui_are_new_machines_each_its_own() {
    let baked = baked();
    let _vms = vm_lock();
    let root = baked.project.root();
    let doc: serde_json::Value = serde_json::from_str(&baked.build.stdout()).expect("build --json");
    let built: Vec<&str> = doc["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(built, ["base", "ui"], "parents first: {doc}");

    let registry = Registry::for_project(root);
    let base = registry
        .latest("base", true)
        .unwrap()
        .expect("a base record");
    let ui = registry.latest("ui", true).unwrap().expect("a ui record");
    assert_eq!(
        ui.parent.to_string(),
        base.id(),
        "ui is built from that base"
    );
    for record in [&base, &ui] {
        let (passed, total) = record.checks_passed();
        assert!(
            total > 0 && passed == total,
            "{}: {passed}/{total} checks passed",
            record.id()
        );
        assert!(
            record.packages.contains_key("openssh-server"),
            "{} has a manifest",
            record.id()
        );
        assert!(
            record.builder.is_some(),
            "{} records its builder",
            record.id()
        );
        let phases: Vec<&str> = record.timings.iter().map(|t| t.phase.as_str()).collect();
        assert!(
            phases.first() == Some(&"create the builder VM")
                && phases.last() == Some(&"make the template and record it")
                && record.timings.iter().any(|t| t.step == Some(1)),
            "{} keeps the duration of every phase: {phases:?}",
            record.id()
        );
    }
    assert!(ui.packages.contains_key("nginx"));
    assert!(!base.packages.contains_key("nginx"));
    assert!(
        base.repositories
            .keys()
            .any(|k| k.contains("bookworm_InRelease")),
        "{:?}",
        base.repositories
    );

    let project = Project::load(root).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let reports = runtime.block_on(async {
        let image = base_meta::current(&base::default_cache_dir(), Suite::Bookworm)
            .await
            .unwrap()
            .map(|b| b.path);
        let target = LocalTarget::new(root, image, AccelMode::Tcg, Progress::silent());
        let registry = Registry::for_project(root);
        let ctx = Context {
            project: &project,
            registry: &registry,
            target: &target,
            target_name: "local",
            bases: &BaseIdentities::from_fn(|_| String::new()),
            connector: &SshConnector,
            progress: Progress::silent(),
            cancel: oxbake::pipeline::cancel::never(),
        };
        let smoke = Smoke {
            ctx: &ctx,
            cores: 2,
            memory_mib: 2048,
            boot_timeout: Duration::from_secs(600),
            ssh_group: Some("ssh-users".into()),
        };
        let mut reports = Vec::new();
        for _ in 0..2 {
            let started = Instant::now();
            let report = smoke
                .run(
                    &template_of(&ui, root),
                    &project.recipes["ui"].recipe,
                    ui.builder.as_ref(),
                )
                .await;
            figure(format!(
                "smoke test of ui: {:.0}s",
                started.elapsed().as_secs_f64()
            ));
            reports.push(report.expect("smoke test ran"));
        }
        reports
    });
    for report in &reports {
        for c in report.hygiene.iter().chain(&report.checks) {
            eprintln!(
                "  {} {}{}",
                if c.passed { "ok  " } else { "FAIL" },
                c.name,
                if c.detail.is_empty() {
                    String::new()
                } else {
                    format!(": {}", c.detail)
                }
            );
        }
        assert!(report.passed(), "failures: {:?}", report.failures());
    }
    // Two clones of one template: each its own machine.
    let (a, b) = (&reports[0].identity, &reports[1].identity);
    eprintln!("clone 1: {a:?}\nclone 2: {b:?}");
    assert_ne!(a.machine_id, b.machine_id, "one machine-id for two clones");
    assert_ne!(a.host_key, b.host_key, "one host key for two clones");
    assert_eq!(a.random_seed.len(), 64, "clone 1 has no random seed");
    assert_ne!(
        a.random_seed, b.random_seed,
        "one random seed for two clones"
    );
    assert!(qemu_pids(root).is_empty(), "the smoke VMs are gone");
}

#[test]
fn a_second_build_with_if_changed_does_nothing_and_says_why() {
    let baked = baked();
    let _vms = vm_lock();
    let before = Registry::for_project(baked.project.root())
        .list(None)
        .unwrap()
        .len();
    let started = Instant::now();
    let run = baked.project.oxbake(&["build", "ui", "--if-changed"]);
    let took = started.elapsed();
    eprintln!("build --if-changed: {took:?}");
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let out = run.stdout();
    assert!(
        out.contains("base: nothing to do") && out.contains("ui: nothing to do"),
        "{out}"
    );
    assert!(out.contains("was built from the same inputs"), "{out}");
    assert_eq!(
        Registry::for_project(baked.project.root())
            .list(None)
            .unwrap()
            .len(),
        before,
        "no new record"
    );
}

#[test]
fn interrupting_a_build_during_its_steps_leaves_nothing_behind() {
    let baked = baked();
    let _vms = vm_lock();
    let root = baked.project.root();
    let _reaper = Reaper(root.to_path_buf());
    let mut child = spawn_oxbake(&baked.project, &["build", "probe"]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("probe: step 1/1: wait") {
            break;
        }
    }
    // Keep reading, as a terminal would, so oxbake's clean-up lines have
    // somewhere to go.
    let rest =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    assert!(
        seen.contains("step 1/1: wait"),
        "the step never started:\n{seen}"
    );
    std::thread::sleep(Duration::from_secs(3));
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let rest = rest.join().unwrap();
    eprintln!("{seen}{rest}");
    assert_eq!(status.code(), Some(130), "exit code after SIGINT");
    assert!(rest.contains("removed builder VM"), "{rest}");
    assert_no_vm_left(root);
    assert!(
        !root.join("images/probe").exists(),
        "no record of an interrupted build"
    );
}

#[test]
fn a_failing_check_fails_the_build_and_leaves_nothing_behind() {
    let baked = baked();
    let _vms = vm_lock();
    let root = baked.project.root();
    let _reaper = Reaper(root.to_path_buf());
    let run = baked.project.oxbake(&["build", "failing"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(
        err.contains("check `a check made to fail` failed: stdout lacks `absent`"),
        "{err}"
    );
    assert!(
        err.contains("role `failing`: 1 of 1 checks failed"),
        "{err}"
    );
    assert_no_vm_left(root);
    assert!(!root.join("images/failing").exists());
}

#[test]
fn backend_bakes_with_every_check_passing() {
    let baked = baked();
    let _vms = vm_lock();
    let run = baked.project.oxbake(&["build", "backend"]);
    eprintln!("{}", run.stderr());
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let record = Registry::for_project(baked.project.root())
        .latest("backend", true)
        .unwrap()
        .expect("a backend record");
    let (passed, total) = record.checks_passed();
    assert!(total > 0 && passed == total, "{passed}/{total}");
    assert!(record.packages.contains_key("mariadb-server"));
}

/// A role that installs the test's own package from a signed repository on
/// this host that wants credentials, the way the OX repository is used.
fn repo_recipe(repo: &crate::support::aptrepo::GuestRepo) -> String {
    let mut recipe = probe_recipe(
        "repo",
        "a package from a signed repository with credentials",
        repo,
        "",
    );
    recipe.push_str(&format!(
        r#"
[[check]]
name = "the package is installed"
run = "dpkg-query -W -f='${{Status}}' {package}"
stdout_contains = ["install ok installed"]

[[check]]
name = "no credentials are left"
run = "ls -A /etc/apt/auth.conf.d"
stdout_lacks = ["oxbake"]
"#,
        package = crate::support::aptrepo::PACKAGE,
    ));
    recipe
}

/// A test role from base whose steps `before` come first, then one that
/// installs the probe package from `repo`, with credentials (the secret
/// `probe_repository_password`).
pub(crate) fn probe_recipe(
    role: &str,
    description: &str,
    repo: &crate::support::aptrepo::GuestRepo,
    before: &str,
) -> String {
    format!(
        r#"role = "{role}"
description = "test role: {description}"
from = "base"

[vars]
probe_repository_url = "{url}"
probe_repository_user = "{user}"
{before}
[[step]]
name = "the probe package"
kind = "apt"
packages = ["{package}"]

[[step.repository]]
name = "probe"
url = "{{{{ probe_repository_url }}}}"
suite = "{suite}"
components = ["{component}"]
key = "apt/probe.asc"
username = "{{{{ probe_repository_user }}}}"
password_secret = "probe_repository_password"
# The loopback test repository speaks plain HTTP.
allow_insecure_credentials = true
"#,
        url = repo.url,
        user = repo.username,
        suite = repo.suite,
        component = repo.component,
        package = crate::support::aptrepo::PACKAGE,
    )
}

#[test]
fn a_package_from_a_signed_repository_with_credentials_and_none_left() {
    use crate::support::aptrepo::AptRepo;
    let baked = baked();
    let _vms = vm_lock();
    let password = "s3cret-Probe-Pass";
    let repo = AptRepo::start("ox-customer", password);
    let guest = repo.for_guest();
    baked
        .project
        .write("files/apt/probe.asc", &guest.key_armored);
    baked
        .project
        .write("recipes/repo.toml", &repo_recipe(&guest));
    let run = baked.project.oxbake_env(
        &["build", "repo"],
        &[("OXBAKE_SECRET_PROBE_REPOSITORY_PASSWORD", password)],
    );
    let root = baked.project.root();
    let _ = std::fs::remove_file(root.join("recipes/repo.toml"));
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let requests = repo.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path.ends_with(".deb") && r.authorized && r.status == 200),
        "the package was fetched with credentials: {:?}",
        requests
            .iter()
            .map(|r| (&r.path, r.status))
            .collect::<Vec<_>>()
    );
    let record = Registry::for_project(root)
        .latest("repo", true)
        .unwrap()
        .expect("a repo record");
    assert!(
        record
            .packages
            .contains_key(crate::support::aptrepo::PACKAGE)
    );
    assert!(record.checks.iter().all(|c| c.passed));
    // The secret is nowhere: not in the output, the record, or the log.
    let log = std::fs::read_dir(root.join(".oxbake/logs"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("repo-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect::<String>();
    let record_text =
        std::fs::read_to_string(root.join(format!("images/repo/{}.toml", record.version))).unwrap();
    for (what, text) in [
        ("stdout", run.stdout()),
        ("stderr", run.stderr()),
        ("build log", log),
        ("record", record_text),
    ] {
        assert!(
            !text.contains(password),
            "the password leaked into the {what}"
        );
    }
}

/// No QEMU process and no VM folder (overlay, seed, sockets) of the project.
fn assert_no_vm_left(root: &std::path::Path) {
    assert!(
        qemu_pids(root).is_empty(),
        "QEMU still runs: {:?}",
        qemu_pids(root)
    );
    let vms: Vec<_> = std::fs::read_dir(root.join(".oxbake/local/vms"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(vms.is_empty(), "VM folders left: {vms:?}");
}
