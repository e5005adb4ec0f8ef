//! `ls --target local` compares the registry's relative paths with the
//! target's absolute ones as the files they name.

use oxbake::suite::Suite;
use oxbake::target::Source;

use super::{base_image, path_of, recorded_template, target, template};
use crate::channels::{Img, record};
use crate::support::project::TestProject;

#[test]
fn ls_target_local_matches_records_with_their_templates() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let project = TestProject::copy();
    let cache = tempfile::tempdir().unwrap();
    let env = [("OXBAKE_CACHE_DIR", cache.path().to_str().unwrap())];
    let base = base_image(&cache.path().join("images/base.qcow2"));
    let t = target(project.root(), &base);
    let (ui, _) = recorded_template(&rt, &t, project.root(), "ui");

    let run = project.oxbake_env(&["ls", "--target", "local"], &env);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stdout()
            .contains("every record has its template, and no template lacks a record"),
        "{}",
        run.stdout()
    );

    // Real drift is still found: a record without its file, a template
    // without a record.
    let registry = oxbake::registry::Registry::for_project(project.root());
    let web = record(&registry, "web", Img::root());
    let stray = rt.block_on(template(&t, "stray-1", Source::Base(Suite::Bookworm)));
    let run = project.oxbake_env(&["ls", "--target", "local", "--json"], &env);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let drift = &doc["target"];
    assert_eq!(drift["in_sync"], false, "{drift}");
    let missing: Vec<&str> = drift["missing_on_target"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["image"].as_str().unwrap())
        .collect();
    assert_eq!(missing, [web.id()], "{drift}");
    let unrecorded: Vec<&str> = drift["not_in_registry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["at"].as_str().unwrap())
        .collect();
    assert_eq!(
        unrecorded,
        [path_of(&stray).display().to_string()],
        "{drift}"
    );
    assert!(!drift.to_string().contains(&ui.id()), "{drift}");
}
