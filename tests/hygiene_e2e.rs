//! Template hygiene proved on the template files themselves: base and ui
//! (baked once, see support::e2e) are read offline and must be clean; a
//! role that leaves a secret and a lease behind must fail its build.
#![cfg(feature = "e2e")]
#![allow(clippy::print_stderr)]

use oxbake::registry::{Artifact, Registry};
use oxbake::target::local::image_fs::ImageFs;

use std::path::{Path, PathBuf};

use crate::support::e2e::{Baked, baked, vm_lock};
use crate::support::figures::figure;
use crate::support::qemu::{Reaper, qemu_pids};

/// The fixture's own builds: role, version and build log. (Other tests
/// record newer versions of the same roles, so "latest" is not theirs.)
fn fixture_builds(baked: &Baked) -> Vec<(String, String, PathBuf)> {
    let doc: serde_json::Value = serde_json::from_str(&baked.build.stdout()).unwrap();
    doc["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |key: &str| r[key].as_str().unwrap().to_owned();
            (text("role"), text("version"), PathBuf::from(text("log")))
        })
        .collect()
}

#[test]
fn base_and_ui_templates_are_clean_offline_name_their_image_and_carry_their_size() {
    let baked = baked();
    let _vms = vm_lock();
    let root = baked.project.root();
    let registry = Registry::for_project(root);
    for (role, version, log) in fixture_builds(baked) {
        let image = format!("{role}@{version}");
        let run = baked.project.oxbake(&["inspect", &image, "--json"]);
        assert_eq!(run.code(), 0, "{image}: {}\n{}", run.stdout(), run.stderr());
        let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
        assert_eq!(doc["findings"], serde_json::json!([]), "{doc}");
        let record = registry.get(&role, &version.parse().unwrap()).unwrap();
        let size = record.size.expect("the record carries the template's size");
        let Artifact::Local { path, .. } = &record.artifact else {
            panic!("a local artifact")
        };
        let apparent = std::fs::metadata(root.join(path)).unwrap().len();
        figure(format!(
            "template {}: {:.1} MiB allocated, {:.1} MiB apparent (trimmed holes make the difference)",
            record.id(),
            size as f64 / 1048576.0,
            apparent as f64 / 1048576.0
        ));
        let (before, after) = trim_figures(&root.join(&log), &role);
        figure(format!(
            "{role}: trimming free space took the builder's disk from {:.1} MiB to {:.1} MiB",
            before as f64 / 1048576.0,
            after as f64 / 1048576.0
        ));
        assert!(
            after < before,
            "the trim freed nothing: {before} -> {after}"
        );
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let release = runtime.block_on(async {
            let fs = ImageFs::open(&root.join(path), &root.join(".oxbake/scratch"))
                .await
                .unwrap();
            fs.read("/usr/lib/os-release").await.unwrap().unwrap()
        });
        let release = String::from_utf8(release).unwrap();
        assert!(release.contains(&format!("IMAGE_ID={role}\n")), "{release}");
        assert!(
            release.contains(&format!("IMAGE_VERSION={version}\n")),
            "{release}"
        );
    }
}

/// The disk's bytes before and after the trim, from a build log.
fn trim_figures(log: &Path, role: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("{role}: trimmed free space")))
        .unwrap_or_else(|| panic!("no trim figure in {}", log.display()));
    let bytes: Vec<u64> = line
        .split('(')
        .skip(1)
        .filter_map(|part| part.split(" bytes)").next()?.parse().ok())
        .collect();
    assert_eq!(bytes.len(), 2, "{line}");
    (bytes[0], bytes[1])
}

#[test]
fn a_project_folder_that_is_moved_keeps_its_templates_readable() {
    let baked = baked();
    let _vms = vm_lock();
    let root = baked.project.root().to_path_buf();
    let ui = fixture_builds(baked)
        .into_iter()
        .find(|(role, ..)| role == "ui")
        .map(|(_, version, _)| version)
        .unwrap();
    let moved = root.with_file_name("e2e-project-moved");
    std::fs::rename(&root, &moved).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_oxbake"))
        .arg("-C")
        .arg(&moved)
        .arg("inspect")
        .arg(format!("ui@{ui}"))
        .output()
        .unwrap();
    std::fs::rename(&moved, &root).unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// A role that copies the build's apt credentials into a file of its own,
/// and a service that writes a DHCP lease when it stops (after the
/// clean-up, at the builder's shutdown).
fn leaky_recipe(repo: &crate::support::aptrepo::GuestRepo) -> String {
    // An apt hook copies the build's credentials while they exist (oxbake
    // removes them right after the apt step).
    let hook = r#"
[[step]]
name = "keep the credentials"
kind = "shell"
run = """echo 'DPkg::Post-Invoke { "cat /etc/apt/auth.conf.d/oxbake-* > /etc/leak.conf 2>/dev/null || true"; };' > /etc/apt/apt.conf.d/99leak"""
"#;
    let mut recipe = crate::build_e2e::probe_recipe(
        "leaky",
        "leaves a secret and a lease in its template",
        repo,
        hook,
    );
    recipe.push_str(
        r#"
[[step]]
name = "a service that writes a lease when it stops"
kind = "shell"
run = """
cat > /etc/systemd/system/leaky.service <<'UNIT'
[Unit]
Description=writes a DHCP lease at shutdown
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/bin/sh -c 'echo lease > /var/lib/dhcp/dhclient.leaky.leases'
[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now leaky.service
"""
"#,
    );
    recipe
}

#[test]
fn a_template_that_keeps_a_secret_or_a_lease_fails_its_build_with_the_files_named() {
    use crate::support::aptrepo::AptRepo;
    let baked = baked();
    let _vms = vm_lock();
    let root = baked.project.root();
    let _reaper = Reaper(root.to_path_buf());
    let password = "s3cret-Leaky-Pass";
    let repo = AptRepo::start("ox-leaky", password);
    let guest = repo.for_guest();
    baked
        .project
        .write("files/apt/probe.asc", &guest.key_armored);
    baked
        .project
        .write("recipes/leaky.toml", &leaky_recipe(&guest));
    let run = baked.project.oxbake_env(
        &["build", "leaky"],
        &[("OXBAKE_SECRET_PROBE_REPOSITORY_PASSWORD", password)],
    );
    let _ = std::fs::remove_file(root.join("recipes/leaky.toml"));
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("template `leaky-"), "{err}");
    assert!(
        err.contains("/etc/leak.conf: holds the value of secret #1"),
        "{err}"
    );
    assert!(
        err.contains("/var/lib/dhcp/dhclient.leaky.leases: must not be in a template"),
        "{err}"
    );
    assert!(!err.contains(password), "the secret is shown: {err}");
    assert!(
        !root.join("images/leaky").exists()
            || std::fs::read_dir(root.join("images/leaky"))
                .unwrap()
                .next()
                .is_none()
    );
    let templates = std::fs::read_dir(root.join(".oxbake/local/templates"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(
        templates.iter().all(|t| !t.starts_with("leaky-")),
        "the unclean template is left: {templates:?}"
    );
    assert!(qemu_pids(root).is_empty(), "the builder VM is gone");
}
