//! The commands on hand-made registries: refusals exit 1 and leave
//! images/ byte-identical; rollback, revoke and diff do what they say.

use oxbake::pipeline::Context;
use oxbake::pipeline::PromoteError;
use oxbake::pipeline::promote::{PromoteRequest, promote};
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::{ChannelAction, Registry, Version};
use oxbake::target::BaseIdentities;

use super::fake::NoBoot;
use super::{Img, record, snapshot};
use crate::support::project::TestProject;

fn setup() -> (TestProject, Registry) {
    let project = TestProject::copy();
    let registry = Registry::for_project(project.root());
    (project, registry)
}

/// Runs oxbake, expects exit 1 with `needle` on stderr and no change in images/.
fn refused(project: &TestProject, args: &[&str], needle: &str) {
    let before = snapshot(&project.path("images"));
    let run = project.oxbake(args);
    assert_eq!(run.code(), 1, "{args:?}: {}", run.stderr());
    assert!(run.stderr().contains(needle), "{args:?}: {}", run.stderr());
    assert!(run.stdout().is_empty(), "{}", run.stdout());
    assert_eq!(
        snapshot(&project.path("images")),
        before,
        "{args:?} changed images/"
    );
}

#[test]
fn promote_gates_refuse_with_the_reason_and_change_nothing() {
    let (project, registry) = setup();
    let good = record(&registry, "ui", Img::root());
    let bad = record(
        &registry,
        "ui",
        Img {
            checks_pass: false,
            ..Img::root()
        },
    );
    let v = good.version.to_string();
    let id = good.id();
    refused(
        &project,
        &["promote", "ui", &v, "--to", "qa"],
        &format!(
            "image `{id}`: unknown channel `qa`; oxbake.toml defines `dev`, `staging`, `prod`"
        ),
    );
    refused(
        &project,
        &["promote", "ui", &v, "--to", "staging"],
        &format!("image `{id}` is not in channel `dev`, which comes before `staging`"),
    );
    refused(
        &project,
        &["promote", "ui", &bad.version.to_string(), "--to", "dev"],
        &format!(
            "image `{}`: 1 of 1 checks did not pass at build time: nginx answers",
            bad.id()
        ),
    );
    refused(
        &project,
        &["promote", "ui", "2020.01.01.1", "--to", "dev"],
        "image `ui@2020.01.01.1` not found",
    );
    registry
        .revoke("ui", &good.version, "CVE-2026-1", "test")
        .unwrap();
    refused(
        &project,
        &["promote", "ui", &v, "--to", "dev"],
        &format!("image `{id}` is revoked (CVE-2026-1): it cannot be promoted"),
    );
    let run = project.oxbake(&["promote", "ui", &v, "--to", "dev", "--force"]);
    assert_eq!(run.code(), 2, "--force needs --reason: {}", run.stderr());
    let run = project.oxbake(&["promote", "ui", "not-a-version", "--to", "dev"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
}

#[tokio::test]
async fn a_failed_smoke_test_changes_nothing_and_force_passes_the_channel_gate() {
    let (project, registry) = setup();
    let image = record(&registry, "ui", Img::root());
    let loaded = Project::load(project.root()).unwrap();
    let target = NoBoot::default();
    let ctx = Context {
        project: &loaded,
        registry: &registry,
        target: &target,
        target_name: "local",
        bases: &BaseIdentities::from_fn(|_| "local:test".into()),
        connector: &oxbake::guest::SshConnector,
        progress: Progress::silent(),
        cancel: oxbake::pipeline::cancel::never(),
    };
    let before = snapshot(&project.path("images"));
    let req = PromoteRequest {
        role: "ui",
        version: image.version,
        channel: "prod",
        force: true,
        reason: Some("hotfix"),
        who: "tester",
    };
    let err = promote(&ctx, &req).await.unwrap_err();
    assert!(matches!(err, PromoteError::Smoke { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("image `{}`: the smoke test could not run", image.id())
    );
    assert_eq!(
        *target.cloned.lock().unwrap(),
        [format!("ui-{}", image.version)],
        "the smoke test cloned the image's template"
    );
    assert!(target.marks.lock().unwrap().is_empty());
    assert_eq!(snapshot(&project.path("images")), before);
    let unforced = PromoteRequest {
        force: false,
        ..req
    };
    let err = promote(&ctx, &unforced).await.unwrap_err();
    assert!(
        matches!(err, PromoteError::NotInPreviousChannel { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn promoting_to_where_it_already_is_skips_the_smoke_test() {
    let (project, registry) = setup();
    let image = record(&registry, "ui", Img::root());
    registry
        .set_channel("ui", "dev", &image.version, "t", "seed")
        .unwrap();
    let loaded = Project::load(project.root()).unwrap();
    let target = NoBoot::default();
    let ctx = Context {
        project: &loaded,
        registry: &registry,
        target: &target,
        target_name: "local",
        bases: &BaseIdentities::from_fn(|_| "local:test".into()),
        connector: &oxbake::guest::SshConnector,
        progress: Progress::silent(),
        cancel: oxbake::pipeline::cancel::never(),
    };
    let req = PromoteRequest {
        role: "ui",
        version: image.version,
        channel: "dev",
        force: false,
        reason: None,
        who: "tester",
    };
    let outcome = promote(&ctx, &req).await.unwrap();
    assert!(!outcome.changed);
    assert!(outcome.smoke.is_none());
    assert!(target.cloned.lock().unwrap().is_empty());
    let name = format!("ui-{}", image.version);
    assert_eq!(
        *target.marks.lock().unwrap(),
        [(name, vec!["dev".to_owned()])]
    );
}

/// Records two versions of `ui` and sets `prod` to the first, then the second.
fn prod_moved_twice(registry: &Registry) -> (Version, Version) {
    let v1 = record(registry, "ui", Img::root()).version;
    let v2 = record(registry, "ui", Img::root()).version;
    registry
        .set_channel("ui", "prod", &v1, "alice", "first")
        .unwrap();
    registry
        .set_channel("ui", "prod", &v2, "alice", "second")
        .unwrap();
    (v1, v2)
}

#[test]
fn rollback_returns_to_the_previous_version_and_records_it() {
    let (project, registry) = setup();
    let (v1, v2) = prod_moved_twice(&registry);
    let run = project.oxbake(&[
        "rollback",
        "ui",
        "--channel",
        "prod",
        "--reason",
        "bad nginx",
    ]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(
        run.stdout(),
        format!("channel `prod` of `ui`: rolled back from {v2} to {v1}\n")
    );
    let channels = registry.channels().unwrap();
    assert_eq!(channels.get("prod", "ui"), Some(v1));
    let last = channels.history.last().unwrap();
    assert_eq!(last.action, ChannelAction::Rollback);
    assert_eq!((last.from, last.to), (Some(v2), v1));
    assert_eq!(last.why, "bad nginx");
    refused(
        &project,
        &["rollback", "ui", "--channel", "prod"],
        "channel `prod` of role `ui` has no earlier usable version to roll back to",
    );
    refused(
        &project,
        &["rollback", "ui", "--channel", "qa"],
        "unknown channel `qa`",
    );
}

#[test]
fn rollback_passes_over_a_revoked_version() {
    let (project, registry) = setup();
    let (v1, _) = prod_moved_twice(&registry);
    let run = project.oxbake(&["revoke", "ui", &v1.to_string(), "--reason", "CVE-2026-2"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(registry.get("ui", &v1).unwrap().is_revoked());
    refused(
        &project,
        &["rollback", "ui", "--channel", "prod"],
        "no earlier usable version",
    );
}

#[test]
fn revoke_says_what_still_uses_the_image_and_blocks_promotion() {
    let (project, registry) = setup();
    let image = record(&registry, "ui", Img::root());
    registry
        .set_channel("ui", "dev", &image.version, "t", "seed")
        .unwrap();
    let v = image.version.to_string();
    let run = project.oxbake(&["revoke", "ui", &v, "--reason", "CVE-2026-3"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(
        run.stdout(),
        format!(
            "revoked `{}`: CVE-2026-3\nno deployed VM on target `local` runs it\n\
             channels that still point at it (roll them back): dev\n",
            image.id()
        )
    );
    let revoked = registry.get("ui", &image.version).unwrap().revoked.unwrap();
    assert_eq!(revoked.reason, "CVE-2026-3");
    refused(
        &project,
        &["promote", "ui", &v, "--to", "dev"],
        "is revoked (CVE-2026-3)",
    );
    refused(
        &project,
        &["revoke", "ui", &v, "--reason", "again"],
        "is already revoked (CVE-2026-3)",
    );
}

#[test]
fn diff_lists_added_removed_and_changed_packages() {
    let (project, registry) = setup();
    let old = record(
        &registry,
        "ui",
        Img {
            packages: &[
                ("nginx", "1.22.1-9"),
                ("curl", "7.88.1-10"),
                ("vim", "2:9.0"),
            ],
            ..Img::root()
        },
    );
    let new = record(
        &registry,
        "ui",
        Img {
            packages: &[
                ("nginx", "1.22.1-9+deb12u1"),
                ("curl", "7.88.1-10"),
                ("jq", "1.6-2.1"),
            ],
            ..Img::root()
        },
    );
    let (v1, v2) = (old.version.to_string(), new.version.to_string());
    let run = project.oxbake(&["diff", "ui", &v1, &v2]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(
        run.stdout(),
        format!(
            "ui@{v1} -> ui@{v2}: 1 added, 1 removed, 1 changed, 1 unchanged\n\
             + jq 1.6-2.1\n- vim 2:9.0\n~ nginx 1.22.1-9 -> 1.22.1-9+deb12u1\n"
        )
    );
    let run = project.oxbake(&["diff", "ui", &v1, &v2, "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["added"]["jq"], "1.6-2.1");
    assert_eq!(doc["removed"]["vim"], "2:9.0");
    assert_eq!(doc["changed"][0]["name"], "nginx");
    assert_eq!(doc["changed"][0]["to"], "1.22.1-9+deb12u1");
    let run = project.oxbake(&["diff", "ui", &v1, "2020.01.01.1"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
}

#[test]
fn revoke_is_recorded_even_when_the_target_cannot_be_reached() {
    let (project, registry) = setup();
    let image = record(
        &registry,
        "ui",
        Img {
            target: "pve",
            ..Img::root()
        },
    );
    let run = project.oxbake_env(
        &[
            "revoke",
            "ui",
            &image.version.to_string(),
            "--reason",
            "CVE-2026-5",
        ],
        &[("OXBAKE_PVE_TOKEN_SECRET", "")],
    );
    assert_ne!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stderr().contains("its deployed VMs cannot be listed"),
        "{}",
        run.stderr()
    );
    let revoked = registry.get("ui", &image.version).unwrap().revoked.unwrap();
    assert_eq!(revoked.reason, "CVE-2026-5");
}

#[test]
fn a_blank_reason_is_refused_and_changes_nothing() {
    let (project, registry) = setup();
    let (v1, v2) = prod_moved_twice(&registry);
    let (v1, v2) = (v1.to_string(), v2.to_string());
    for blank in ["", "  ", "\t\n"] {
        for args in [
            vec![
                "promote", "ui", &v1, "--to", "prod", "--force", "--reason", blank,
            ],
            vec!["promote", "ui", &v2, "--to", "dev", "--reason", blank],
            vec!["rollback", "ui", "--channel", "prod", "--reason", blank],
            vec!["revoke", "ui", &v2, "--reason", blank],
        ] {
            let before = snapshot(&project.path("images"));
            let run = project.oxbake(&args);
            assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr());
            assert!(
                run.stderr()
                    .contains("a reason must not be empty or blank: it is recorded in the history"),
                "{args:?}: {}",
                run.stderr()
            );
            assert_eq!(snapshot(&project.path("images")), before, "{args:?}");
        }
    }
    assert!(
        !registry
            .get("ui", &v2.parse().unwrap())
            .unwrap()
            .is_revoked()
    );
}
