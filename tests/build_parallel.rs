//! `pipeline::build` of three roles from one parent against a target and a
//! guest that only answer (tests/support/answering.rs): the children are
//! baked at once, at most `jobs` at a time, once the parent exists; the
//! first failure starts nothing more and the bakes it stops are cleaned up
//! as after an interrupt; a role whose parent failed never starts.

use std::time::Duration;

use oxbake::pipeline::{BuildError, BuildOptions, BuildOutcome, Context, build};
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::Registry;
use oxbake::target::BaseIdentities;

use crate::support::answering::{Answering, AnsweringGuest};
use crate::support::project::TestProject;

const PARENT: &str = "trunk";
const CHILDREN: [&str; 3] = ["leafa", "leafb", "leafc"];

/// A copy of the project with `trunk` and its three children.
fn project() -> TestProject {
    let project = TestProject::copy();
    let recipe = |role: &str, from: Option<&str>| {
        let from = from.map_or(String::new(), |f| format!("from = \"{f}\"\n"));
        format!(
            "role = \"{role}\"\ndescription = \"a role baked in parallel\"\n{from}\n\
             [[step]]\nname = \"one\"\nkind = \"shell\"\nrun = \"true\"\n"
        )
    };
    project.write(&format!("recipes/{PARENT}.toml"), &recipe(PARENT, None));
    for child in CHILDREN {
        project.write(
            &format!("recipes/{child}.toml"),
            &recipe(child, Some(PARENT)),
        );
    }
    project
}

/// A target whose builder VMs take `millis` to create, refusing `failing`
/// after a third of that.
fn target(millis: u64, failing: &[&str]) -> Answering {
    let latency = [
        ("create_vm", Duration::from_millis(millis)),
        ("refuse", Duration::from_millis(millis / 3)),
    ];
    Answering::new(&latency, failing)
}

/// Builds the three children (and so their parent) with `--jobs jobs`.
async fn bake(
    project: &TestProject,
    target: &Answering,
    jobs: u32,
) -> Result<Vec<BuildOutcome>, BuildError> {
    let loaded = Project::load(project.root()).expect("the project loads");
    let registry = Registry::for_project(project.root());
    let cancel = oxbake::pipeline::cancel::never();
    let ctx = Context {
        project: &loaded,
        registry: &registry,
        target,
        target_name: "answering",
        bases: &BaseIdentities::from_fn(|_| "local:debian-12-test".into()),
        connector: &AnsweringGuest,
        progress: Progress::silent(),
        cancel,
    };
    let roles: Vec<String> = CHILDREN.iter().map(|r| r.to_string()).collect();
    let opts = BuildOptions {
        jobs: Some(jobs),
        ..BuildOptions::default()
    };
    build(&ctx, &roles, &opts).await
}

fn built(outcomes: &[BuildOutcome]) -> Vec<&str> {
    outcomes
        .iter()
        .map(|o| match o {
            BuildOutcome::Built { role, .. } => role.as_str(),
            BuildOutcome::UpToDate { role, .. } => panic!("{role} was up to date"),
        })
        .collect()
}

#[tokio::test]
async fn three_children_of_one_parent_bake_at_most_jobs_at_once() {
    for jobs in [1, 2, 3] {
        let project = project();
        let target = target(400, &[]);
        let outcomes = bake(&project, &target, jobs).await.expect("the build");
        // The parent first, then the children in the order asked, however
        // their bakes ended.
        assert_eq!(built(&outcomes), [PARENT, "leafa", "leafb", "leafc"]);
        assert_eq!(
            target.most_created_at_once(),
            jobs as usize,
            "jobs = {jobs}"
        );
        let created = target.created.lock().unwrap().clone();
        assert!(created[0].starts_with("build-trunk-"), "{created:?}");
        assert!(target.vms().is_empty(), "{:?}", target.vms());
    }
}

#[tokio::test]
async fn a_failure_starts_nothing_more_and_stopped_bakes_are_cleaned_up() {
    // All at once: leafa is refused while leafb and leafc are being
    // created; they finish creating, stop as if interrupted and are removed.
    let project = project();
    let target = target(900, &["leafa"]);
    let e = bake(&project, &target, 3).await.expect_err("leafa fails");
    let text = oxbake::error_chain::chain(&e);
    assert!(text.contains("role `leafa`"), "{text}");
    assert!(
        !e.is_interrupted(),
        "the real failure, not the stop: {text}"
    );
    let destroyed = target.destroyed.lock().unwrap().clone();
    for child in ["leafb", "leafc"] {
        let prefix = format!("build-{child}-");
        assert!(
            destroyed.iter().any(|d| d.starts_with(&prefix)),
            "{child} removed: {destroyed:?}"
        );
    }
    assert!(target.vms().is_empty(), "{:?}", target.vms());
    let registry = Registry::for_project(project.root());
    for child in CHILDREN {
        assert!(
            registry.versions(child).unwrap_or_default().is_empty(),
            "{child}"
        );
    }

    // One at a time: after leafa fails, neither leafb nor leafc starts.
    let project = self::project();
    let target = self::target(10, &["leafa"]);
    bake(&project, &target, 1).await.expect_err("leafa fails");
    let created = target.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1, "only the parent's builder: {created:?}");
}

#[tokio::test]
async fn no_child_of_a_failed_parent_starts() {
    let project = project();
    let target = target(10, &[PARENT]);
    let e = bake(&project, &target, 3)
        .await
        .expect_err("the parent fails");
    let text = oxbake::error_chain::chain(&e);
    assert!(text.contains("role `trunk`"), "{text}");
    assert!(target.created.lock().unwrap().is_empty());
}
