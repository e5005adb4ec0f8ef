//! A whole bake against a target and a guest that only answer (no VM, no
//! SSH): the record it writes keeps how long every phase and recipe step
//! took, the build log ends each section with its duration, and `oxbake
//! show` prints the timings as a table and in `--json`.

use std::path::Path;
use std::time::Duration;

use oxbake::pipeline::{BuildOptions, BuildOutcome, Context, build};
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::Registry;
use oxbake::target::BaseIdentities;

use crate::support::answering::{Answering, AnsweringGuest};
use crate::support::project::TestProject;

const RECIPE: &str = r#"role = "timed"
description = "a role whose bake is timed"

[[step]]
name = "first"
kind = "shell"
run = "true"

[[step]]
name = "second"
kind = "shell"
run = "true"

[[check]]
name = "ok"
run = "true"
"#;

/// Every phase of the bake of [`RECIPE`], in order, with its step number.
const PHASES: [(&str, Option<u32>); 11] = [
    ("create the builder VM", None),
    ("boot and connect over SSH", None),
    ("wait for cloud-init", None),
    ("prepare", None),
    ("step 1/2: first", Some(1)),
    ("step 2/2: second", Some(2)),
    ("checks", None),
    ("package manifest", None),
    ("clean up the image", None),
    ("shut down", None),
    ("make the template and record it", None),
];

async fn bake(root: &Path) -> String {
    let project = Project::load(root).expect("the project loads");
    let registry = Registry::for_project(root);
    // No one can interrupt: the builder VM's creation (pipeline/vm.rs)
    // once took the gone sender for an interrupt.
    let cancel = oxbake::pipeline::cancel::never();
    let ctx = Context {
        project: &project,
        registry: &registry,
        target: &Answering::new(&[("create_vm", Duration::from_millis(20))], &[]),
        target_name: "answering",
        bases: &BaseIdentities::from_fn(|_| "local:debian-12-test".into()),
        connector: &AnsweringGuest,
        progress: Progress::silent(),
        cancel,
    };
    let outcomes = build(&ctx, &["timed".to_owned()], &BuildOptions::default())
        .await
        .expect("the bake succeeds");
    match &outcomes[..] {
        [BuildOutcome::Built { version, log, .. }] => {
            let log = std::fs::read_to_string(log).expect("the build log");
            for (phase, _) in PHASES {
                assert!(
                    log.contains(&format!("<== {phase}: done after ")),
                    "{phase}: {log}"
                );
            }
            version.clone()
        }
        other => panic!("one role built: {other:?}"),
    }
}

#[tokio::test]
async fn a_built_record_keeps_every_phase_duration_and_show_prints_them() {
    let project = TestProject::copy();
    project.write("recipes/timed.toml", RECIPE);
    let version = bake(project.root()).await;

    let record = Registry::for_project(project.root())
        .get("timed", &version.parse().unwrap())
        .expect("the record");
    let phases: Vec<(&str, Option<u32>)> = record
        .timings
        .iter()
        .map(|t| (t.phase.as_str(), t.step))
        .collect();
    assert_eq!(phases, PHASES);
    assert!(record.timings[0].millis >= 20, "{:?}", record.timings);

    let id = format!("timed@{version}");
    let shown = project.oxbake(&["show", &id]);
    assert_eq!(shown.code(), 0, "{}", shown.stderr());
    let text = shown.stdout();
    assert!(text.contains("\ntimings ("), "{text}");
    for (phase, _) in PHASES {
        assert!(text.contains(&format!("\n  {phase}  ")), "{phase}: {text}");
    }
    let shown = project.oxbake(&["--json", "show", &id]);
    let doc: serde_json::Value = serde_json::from_str(&shown.stdout()).expect("show --json");
    let timings = doc["timings"].as_array().expect("timings");
    assert_eq!(timings.len(), PHASES.len(), "{doc}");
    assert_eq!(timings[4]["phase"], "step 1/2: first");
    assert_eq!(timings[4]["step"], 1);
    assert!(timings[0]["seconds"].as_f64().unwrap() >= 0.02, "{doc}");
}
