//! A channel that points at a version oxbake cannot use (its record is
//! missing or unreadable) is reported by `ls`, `check` and `nightly --plan`,
//! each naming the channel, the role, the version and what is wrong, and
//! `rollback` moves it back to the previous usable version.

use oxbake::registry::{ImageRecord, Registry};

use super::{Img, record};
use crate::support::project::TestProject;

/// `ui` in `prod` went v1 -> v2; v2's record then lost or broken by `spoil`.
fn setup(
    spoil: impl FnOnce(&TestProject, &ImageRecord),
) -> (TestProject, ImageRecord, ImageRecord) {
    let project = TestProject::copy();
    let registry = Registry::for_project(project.root());
    let v1 = record(&registry, "ui", Img::root());
    let v2 = record(&registry, "ui", Img::root());
    for v in [&v1, &v2] {
        registry
            .set_channel("ui", "prod", &v.version, "alice", "release")
            .unwrap();
    }
    spoil(&project, &v2);
    (project, v1, v2)
}

fn missing(project: &TestProject, v: &ImageRecord) {
    std::fs::remove_file(project.path(&format!("images/ui/{}.toml", v.version))).unwrap();
}

fn unparsable(project: &TestProject, v: &ImageRecord) {
    project.write(&format!("images/ui/{}.toml", v.version), "role = [\n");
}

/// `images/channels.toml:LINE:COLUMN` of the `ui = "V2"` entry.
fn place(project: &TestProject, v: &ImageRecord) -> String {
    let text = project.read("images/channels.toml");
    let entry = format!("ui = \"{}\"", v.version);
    let line = text.lines().position(|l| l == entry).unwrap() + 1;
    format!("images/channels.toml:{line}:6")
}

#[test]
fn ls_check_and_nightly_plan_report_a_channel_on_a_missing_version() {
    let (project, _v1, v2) = setup(missing);
    let at = place(&project, &v2);
    let what = format!(
        "channel `prod` of role `ui` points at {}, which cannot be used: its record `images/ui/{}.toml` does not exist",
        v2.version, v2.version
    );

    let ls = project.oxbake(&["ls"]);
    assert_eq!(ls.code(), 0, "{}", ls.stderr());
    assert!(
        ls.stdout().contains(&format!("{at}: {what}")),
        "{}",
        ls.stdout()
    );
    let ls = project.oxbake(&["ls", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&ls.stdout()).unwrap();
    assert_eq!(doc["channel_problems"][0]["channel"], "prod", "{doc}");
    assert_eq!(doc["channel_problems"][0]["at"], at.as_str());

    let check = project.oxbake(&["check"]);
    assert_eq!(check.code(), 2, "{}", check.stdout());
    assert!(
        check.stderr().contains(&format!("{at}: {what}")),
        "{}",
        check.stderr()
    );

    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().to_str().unwrap();
    let plan = project.oxbake_env(
        &["nightly", "--plan", "--json"],
        &[("OXBAKE_CACHE_DIR", cache_dir)],
    );
    assert_eq!(plan.code(), 1, "{}", plan.stderr());
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout()).unwrap();
    let problems = doc["channel_problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p.as_str().unwrap().contains(&what)),
        "{doc}"
    );
}

#[test]
fn rollback_moves_a_channel_off_a_missing_or_unreadable_version() {
    for spoil in [missing, unparsable] {
        let (project, v1, v2) = setup(spoil);
        let run = project.oxbake(&["rollback", "ui", "--channel", "prod", "--reason", "gone"]);
        assert_eq!(run.code(), 0, "{}", run.stderr());
        let registry = Registry::for_project(project.root());
        let channels = registry.channels().unwrap();
        assert_eq!(
            channels.get("prod", "ui"),
            Some(v1.version),
            "from {}",
            v2.version
        );
        assert!(registry.channel_problems().unwrap().is_empty());
        let check = project.oxbake(&["check"]);
        assert!(
            !check.stderr().contains("images/channels.toml"),
            "{}",
            check.stderr()
        );
    }
}

#[test]
fn ls_names_the_channel_when_its_record_cannot_be_parsed() {
    let (project, _v1, v2) = setup(unparsable);
    let ls = project.oxbake(&["ls"]);
    assert_eq!(ls.code(), 2, "{}", ls.stderr());
    let stderr = ls.stderr();
    assert!(
        stderr.contains(&format!(
            "channel `prod` of role `ui` points at {}",
            v2.version
        )) && stderr.contains("its record is invalid: images/ui/"),
        "{stderr}"
    );
}
