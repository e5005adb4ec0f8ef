//! Environments and deploys: the plan from listings, `oxbake check` on
//! environment values, the revoked-version refusal, secrets kept out of
//! every output. The end-to-end deploy on the local target is in
//! `deploy/e2e.rs` (feature `e2e`).

use std::collections::BTreeMap;
use std::path::Path;

use oxbake::pipeline::deploy::plan::{Action, Desired, Existing, compute};
use oxbake::pipeline::deploy::tag::DeployTag;
use oxbake::registry::{Artifact, NewImage, Registry, Version};
use oxbake::target::{Labels, ManagedVm, VmHandle, VmKind, VmLabels, VmState};

use crate::support::project::TestProject;

#[cfg(feature = "e2e")]
mod backup;
#[cfg(feature = "e2e")]
mod e2e;
#[cfg(feature = "e2e")]
mod monitoring;
mod placement;
mod quorum;
mod secrets;
mod sim;
mod waves;

fn desired(role: &str, slot: u32, version: &str, seed: &str) -> Desired {
    Desired {
        role: role.into(),
        slot,
        hostname: format!("lab-{role}-{slot}"),
        version: version.into(),
        seed: seed.into(),
        node: None,
        bootstrap: false,
    }
}

fn listed(name: &str, env: &str, role: &str, slot: u32, version: &str, seed: &str) -> ManagedVm {
    let tag = DeployTag {
        deploy_id: "0a0b0c0d".into(),
        slot,
        seed: seed.into(),
    };
    ManagedVm {
        handle: VmHandle {
            name: name.into(),
            id: name.into(),
        },
        labels: VmLabels::Read(Labels {
            env: Some(env.into()),
            version: Some(version.into()),
            ..Labels::new(tag.to_string(), role, VmKind::Deployed)
        }),
        state: VmState::Running,
        node: None,
        created: None,
    }
}

fn summary(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Create { want } => format!("create {}", want.hostname),
            Action::Replace { want, old, why, .. } => {
                format!("replace {} by {} ({why})", old.name, want.hostname)
            }
            Action::Keep { vm, .. } => format!("keep {}", vm.name),
            Action::Start { vm, .. } => format!("start {}", vm.name),
            Action::Destroy { vm } => format!("destroy {}", vm.name),
        })
        .collect()
}

#[test]
fn plan_creates_replaces_keeps_and_destroys() {
    let want = [
        desired("backend", 1, "2026.11.25.1", "aa"),
        desired("ui", 1, "2026.11.25.2", "bb"),
        desired("ui", 2, "2026.11.25.2", "cc"),
        desired("services", 1, "2026.11.25.1", "dd"),
    ];
    let mut builder = listed("b", "lab", "backend", 1, "2026.11.25.1", "aa");
    if let VmLabels::Read(labels) = &mut builder.labels {
        labels.kind = VmKind::Builder;
    }
    let vms = [
        listed("lab-backend-1", "lab", "backend", 1, "2026.11.25.1", "aa"),
        listed("lab-ui-1", "lab", "ui", 1, "2026.11.25.1", "bb"),
        listed("lab-ui-2", "lab", "ui", 2, "2026.11.25.2", "c0"),
        listed("lab-ui-3", "lab", "ui", 3, "2026.11.25.2", "ee"),
        listed("lab-old-1", "lab", "old", 1, "2026.11.20.1", "ff"),
        listed(
            "prod-services-1",
            "prod",
            "services",
            1,
            "2026.11.25.1",
            "dd",
        ),
        builder,
    ];
    let plan = compute(&want, &Existing::of_env(&vms, "lab"));
    assert_eq!(
        summary(&plan.actions),
        [
            "destroy lab-ui-3",
            "destroy lab-old-1",
            "keep lab-backend-1",
            "replace lab-ui-1 by lab-ui-1 (version 2026.11.25.1 -> 2026.11.25.2)",
            "replace lab-ui-2 by lab-ui-2 (cloud-init data changed)",
            "create lab-services-1",
        ]
    );
    assert!(!plan.is_noop());
}

#[test]
fn plan_of_an_up_to_date_environment_keeps_everything() {
    let want = [desired("ui", 1, "2026.11.25.2", "bb")];
    let vms = [
        // A leftover of an interrupted rolling replace: same slot, old seed.
        listed("lab-ui-1", "lab", "ui", 1, "2026.11.25.2", "b0"),
        listed("lab-ui-1-4d5e6f", "lab", "ui", 1, "2026.11.25.2", "bb"),
    ];
    let plan = compute(&want, &Existing::of_env(&vms, "lab"));
    assert_eq!(
        summary(&plan.actions),
        ["destroy lab-ui-1", "keep lab-ui-1-4d5e6f"]
    );
    let plan = compute(&want, &Existing::of_env(&vms[1..], "lab"));
    assert!(plan.is_noop());
}

#[test]
fn check_reports_a_missing_environment_value_at_its_place() {
    let project = TestProject::copy();
    let config = project.read("oxbake.toml");
    assert!(config.contains("backend_port = 8009\n"));
    project.write(
        "oxbake.toml",
        &config.replacen("backend_port = 8009\n", "", 1),
    );
    let line = config
        .lines()
        .position(|l| l == "[environments.lab.roles.ui.values]")
        .unwrap()
        + 1;
    let run = project.oxbake(&["check"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert_eq!(
        run.stderr().trim(),
        format!(
            "oxbake.toml:{line}:1: environment `lab`, role `ui`: missing value `backend_port` (the recipe's [deploy] values need it)"
        )
    );
}

const SECRETS: [(&str, &str); 3] = [
    ("OXBAKE_SECRET_TLS_PRIVATE_KEY", "tls-key-8c1f-secret"),
    ("OXBAKE_SECRET_DB_PASSWORD", "db-pw-77aa-secret"),
    ("OXBAKE_SECRET_OX_ADMIN_PASSWORD", "admin-pw-3b9e-secret"),
];

/// Records one fake image per role of the `lab` environment and points the
/// `dev` channel at it. The templates do not exist.
fn channel_with_fake_images(root: &Path) -> BTreeMap<String, Version> {
    channel_with(root, |role| Artifact::Local {
        path: format!(".oxbake/local/templates/{role}-missing.qcow2").into(),
        sha256: "b".repeat(64).parse().unwrap(),
    })
}

fn channel_with(root: &Path, artifact: impl Fn(&str) -> Artifact) -> BTreeMap<String, Version> {
    channel_of(root, &["backend", "services", "ui"], artifact)
}

/// Fake images of `roles` on the dev channel.
fn channel_of(
    root: &Path,
    roles: &[&str],
    artifact: impl Fn(&str) -> Artifact,
) -> BTreeMap<String, Version> {
    let registry = Registry::for_project(root);
    let hex = |c: char| c.to_string().repeat(64).parse().unwrap();
    let mut versions = BTreeMap::new();
    for &role in roles {
        let image = NewImage {
            inputs: hex('a'),
            parent: "base-image:debian-12-test".parse().unwrap(),
            target: "local".into(),
            artifact: artifact(role),
            repositories: BTreeMap::new(),
            packages: BTreeMap::new(),
            checks: vec![],
            builder: None,
            size: None,
        };
        let record = registry.record(role, image).unwrap();
        registry
            .set_channel(role, "dev", &record.version, "test", "fake")
            .unwrap();
        versions.insert(role.to_owned(), record.version);
    }
    versions
}

#[test]
fn a_revoked_channel_version_is_refused_and_nothing_is_created() {
    let project = TestProject::copy();
    let versions = channel_with_fake_images(project.root());
    let ui = versions["ui"];
    Registry::for_project(project.root())
        .revoke("ui", &ui, "CVE-2026-0001 in nginx", "test")
        .unwrap();
    for args in [["deploy", "lab", "--plan"], ["deploy", "lab", "--json"]] {
        let run = project.oxbake_env(&args, &SECRETS);
        assert_eq!(run.code(), 1, "{}", run.stderr());
        assert!(
            run.stderr().contains(&format!(
                "`ui@{ui}` (channel `dev`) is revoked: CVE-2026-0001 in nginx"
            )),
            "{}",
            run.stderr()
        );
        // No plan on stdout: nothing, or with --json the one error document.
        if args[2] == "--json" {
            let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
            assert_eq!(doc["error"]["exit"], 1, "{doc}");
            assert_eq!(doc.as_object().map(|o| o.len()), Some(1), "{doc}");
        } else {
            assert_eq!(run.stdout(), "");
        }
    }
    assert!(!project.path(".oxbake/local/vms").exists());
}

#[test]
fn secrets_never_reach_the_plan_or_an_error() {
    let project = TestProject::copy();
    channel_with_fake_images(project.root());
    let plan = project.oxbake_env(&["deploy", "lab", "--plan"], &SECRETS);
    assert_eq!(plan.code(), 0, "{}", plan.stderr());
    let text = plan.stdout();
    // Each row: wave, action, role, vm, …
    let creates: Vec<&str> = text
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("create"))
        .collect();
    assert_eq!(creates.len(), 3, "{text}");
    for vm in ["lab-backend-1", "lab-services-1", "lab-ui-1"] {
        assert!(creates.iter().any(|l| l.contains(vm)), "{text}");
    }
    let json = project.oxbake_env(&["deploy", "lab", "--plan", "--json"], &SECRETS);
    assert_eq!(json.code(), 0, "{}", json.stderr());
    let doc: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    let actions = doc["plan"]["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 3);
    assert!(actions.iter().all(|a| a["action"] == "create"));
    // Applying fails at once: the fake templates do not exist.
    let apply = project.oxbake_env(&["deploy", "lab"], &SECRETS);
    assert_eq!(apply.code(), 1, "{}", apply.stderr());
    assert!(
        apply.stderr().contains("cannot create"),
        "{}",
        apply.stderr()
    );
    let key = project.read(".oxbake/deploy/lab.key");
    for run in [&plan, &json, &apply] {
        for (_, secret) in SECRETS {
            assert!(!run.stdout().contains(secret), "{}", run.stdout());
            assert!(!run.stderr().contains(secret), "{}", run.stderr());
        }
        assert!(!run.stdout().contains(key.trim()));
    }
    assert_eq!(
        std::fs::read_dir(project.path(".oxbake/local/vms"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    // A missing secret is invalid input (exit 2) and names the variable.
    let missing = project.oxbake_env(&["deploy", "lab", "--plan"], &SECRETS[1..]);
    assert_eq!(missing.code(), 2, "{}", missing.stderr());
    assert!(missing.stderr().contains("OXBAKE_SECRET_TLS_PRIVATE_KEY"));
}
