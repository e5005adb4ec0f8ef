//! The nightly's decisions and order on a small project with a fake bake,
//! promotion and prune (no VM, no network).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::pipeline::RegistryLineage;
use crate::progress::Progress;
use crate::project::Project;
use crate::registry::{Artifact, NewImage, Parent, Registry, Sha256, Version};
use crate::role::inputs;
use crate::suite::Suite;
use crate::target::BaseIdentities;

const BASE: &str = "local:debian-12-test";

/// The bases the tests' target has: [`BASE`] for bookworm, another for trixie.
fn bases() -> BaseIdentities {
    BaseIdentities::from_fn(|suite| match suite {
        Suite::Bookworm => BASE.to_owned(),
        other => format!("local:debian-{}-test", other.version()),
    })
}

/// a <- b <- c, and d on its own.
fn project(dir: &Path) -> Project {
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "oxbake.toml",
        "[project]\nname = \"t\"\nchannels = [\"dev\", \"prod\"]\n",
    );
    for (role, from) in [("a", None), ("b", Some("a")), ("c", Some("b")), ("d", None)] {
        let from = from.map_or(String::new(), |f| format!("from = \"{f}\"\n"));
        write(
            &format!("recipes/{role}.toml"),
            &format!(
                "role = \"{role}\"\n{from}\n[[step]]\nkind = \"template\"\n\
                 source = \"{role}.j2\"\ndest = \"/etc/{role}\"\n"
            ),
        );
        write(&format!("templates/{role}.j2"), &format!("{role}\n"));
    }
    write("templates/.keep", "");
    Project::load(dir).unwrap()
}

/// Records an image of `role` built from its current inputs.
fn record(project: &Project, registry: &Registry, role: &str, repos: &[(&str, &str)]) -> Version {
    let lineage = RegistryLineage {
        registry,
        bases: bases(),
    };
    let inputs = inputs::inputs(project, role, &lineage).unwrap();
    let parent = match project.recipes[role].recipe.from.as_ref() {
        Some(p) => {
            let p = p.get_ref();
            let v = registry.latest(p, true).unwrap().unwrap().version;
            Parent::Image {
                role: p.clone(),
                version: v,
            }
        }
        None => Parent::Base(BASE.into()),
    };
    let image = NewImage {
        inputs: inputs.hash.parse().unwrap(),
        parent,
        target: "local".into(),
        artifact: Artifact::Local {
            path: PathBuf::from(format!(".oxbake/local/templates/{role}.qcow2")),
            sha256: "0".repeat(64).parse().unwrap(),
        },
        repositories: repos
            .iter()
            .map(|(k, v)| (k.to_string(), v.parse::<Sha256>().unwrap()))
            .collect(),
        packages: BTreeMap::new(),
        checks: Vec::new(),
        builder: None,
        size: None,
    };
    registry.record(role, image).unwrap().version
}

/// Bakes by recording; fails the roles in `failing`; promotes by setting
/// the channel; prunes nothing.
struct FakeSteps<'a> {
    project: &'a Project,
    registry: &'a Registry,
    failing: Vec<&'static str>,
    calls: Mutex<Vec<String>>,
    /// Roles handled at once.
    jobs: usize,
    /// Bakes running now, and the most at once.
    baking: Mutex<(usize, usize)>,
}

impl<'a> FakeSteps<'a> {
    fn new(project: &'a Project, registry: &'a Registry, failing: Vec<&'static str>) -> Self {
        FakeSteps {
            project,
            registry,
            failing,
            calls: Mutex::new(Vec::new()),
            jobs: 1,
            baking: Mutex::new((0, 0)),
        }
    }
}

#[async_trait]
impl NightlySteps for FakeSteps<'_> {
    async fn build(&self, role: &str) -> Result<Version, StepFailure> {
        self.calls.lock().unwrap().push(format!("build {role}"));
        {
            let mut baking = self.baking.lock().unwrap();
            baking.0 += 1;
            baking.1 = baking.1.max(baking.0);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        self.baking.lock().unwrap().0 -= 1;
        if self.failing.contains(&role) {
            return Err(StepFailure::Failed(format!("role `{role}`: step failed")));
        }
        Ok(record(self.project, self.registry, role, &[]))
    }

    async fn promote(&self, role: &str, v: &Version, ch: &str) -> Result<(), StepFailure> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("promote {role}@{v}"));
        self.registry
            .set_channel(role, ch, v, "test", "nightly")
            .unwrap();
        Ok(())
    }

    async fn prune(&self) -> Result<Vec<String>, StepFailure> {
        self.calls.lock().unwrap().push("prune".into());
        Ok(vec!["a@2020.01.01.1".into()])
    }

    fn jobs(&self) -> usize {
        self.jobs
    }
}

fn planner<'a>(project: &'a Project, registry: &'a Registry, refresh: bool) -> Planner<'a> {
    Planner {
        project,
        registry,
        bases: bases(),
        base_mirror: "http://127.0.0.1:9/debian".to_owned(),
        fetcher: RepoFetcher::new().unwrap(),
        refresh,
    }
}

/// Each role of `report` with its status, in order.
fn statuses(report: &NightlyReport) -> Vec<(&str, report::Status)> {
    report
        .roles
        .iter()
        .map(|r| (r.role.as_str(), r.status))
        .collect()
}

async fn nightly(steps: &FakeSteps<'_>, refresh: bool, plan_only: bool) -> NightlyReport {
    let nightly = Nightly {
        planner: planner(steps.project, steps.registry, refresh),
        steps: (!plan_only).then_some(steps as &dyn NightlySteps),
        channel: Some("dev".into()),
        progress: Progress::silent(),
    };
    nightly.run().await.unwrap()
}

fn setup() -> (tempfile::TempDir, Project, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path());
    let registry = Registry::for_project(dir.path());
    (dir, project, registry)
}

#[tokio::test]
async fn first_run_builds_everything_ancestors_first_then_nothing() {
    let (_dir, project, registry) = setup();
    let steps = FakeSteps::new(&project, &registry, vec![]);
    let report = nightly(&steps, false, false).await;
    assert!(report.ok(), "{}", crate::report::nightly::table(&report));
    assert_eq!(report.rebuilt(), ["a", "b", "c", "d"]);
    let b = report.roles.iter().find(|r| r.role == "b").unwrap();
    assert_eq!(
        b.decision,
        Decision::Rebuild(Reason::ParentRebuilt { parent: "a".into() })
    );
    assert_eq!(report.roles[0].pruned, ["a@2020.01.01.1"]);
    steps.calls.lock().unwrap().clear();
    let again = nightly(&steps, false, false).await;
    assert!(
        again.rebuilt().is_empty(),
        "{}",
        crate::report::nightly::table(&again)
    );
    assert_eq!(*steps.calls.lock().unwrap(), ["prune"]);
    let promoted = again.roles.iter().map(|r| r.promotion.clone().unwrap());
    assert!(
        promoted
            .into_iter()
            .all(|p| matches!(p, report::Promotion::AlreadyIn { .. }))
    );
}

#[tokio::test]
async fn a_changed_template_rebuilds_its_role_and_children_only() {
    let (dir, project, registry) = setup();
    for role in ["a", "b", "c", "d"] {
        record(&project, &registry, role, &[]);
    }
    std::fs::write(dir.path().join("templates/b.j2"), "B\n").unwrap();
    let project = Project::load(dir.path()).unwrap();
    let steps = FakeSteps::new(&project, &registry, vec![]);
    let plan = nightly(&steps, false, true).await;
    assert_eq!(plan.rebuilt(), ["b", "c"]);
    assert!(
        steps.calls.lock().unwrap().is_empty(),
        "a plan acts on nothing"
    );
    let report = nightly(&steps, false, false).await;
    assert_eq!(report.rebuilt(), ["b", "c"]);
    let b = &report.roles[1];
    assert_eq!(b.decision, Decision::Rebuild(Reason::InputsChanged));
    let calls = steps.calls.lock().unwrap().clone();
    assert!(calls.contains(&"build b".to_owned()) && calls.contains(&"build c".to_owned()));
    assert!(
        !calls.iter().any(|c| c == "build a" || c == "build d"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_failed_role_skips_its_children_and_the_rest_goes_on() {
    let (_dir, project, registry) = setup();
    let steps = FakeSteps::new(&project, &registry, vec!["a"]);
    let report = nightly(&steps, false, false).await;
    assert!(!report.ok());
    let status = statuses(&report);
    use report::Status::*;
    assert_eq!(
        status,
        [("a", Failed), ("b", Skipped), ("c", Skipped), ("d", Ok)]
    );
    assert!(crate::report::nightly::table(&report).contains("a: role `a`: step failed"));
    assert_eq!(
        report.roles[2].decision,
        Decision::Skip { parent: "b".into() }
    );
}

#[tokio::test]
async fn independent_roles_bake_at_once_within_jobs_and_a_failure_skips_only_descendants() {
    let (_dir, project, registry) = setup();
    let mut steps = FakeSteps::new(&project, &registry, vec!["b"]);
    steps.jobs = 2;
    let report = nightly(&steps, false, false).await;
    // a and d have no parent: baked at once; b (a's child) fails, so c
    // (b's child) is skipped; d is not held up.
    assert_eq!(steps.baking.lock().unwrap().1, 2);
    let status = statuses(&report);
    use report::Status::*;
    assert_eq!(
        status,
        [("a", Ok), ("b", Failed), ("c", Skipped), ("d", Ok)]
    );
    let calls = steps.calls.lock().unwrap().clone();
    assert!(!calls.contains(&"build c".to_owned()), "{calls:?}");
    let first_b = calls.iter().position(|c| c == "build b").unwrap();
    let a_promoted = calls
        .iter()
        .position(|c| c.starts_with("promote a@"))
        .unwrap();
    assert!(
        a_promoted < first_b,
        "a child waits for its parent: {calls:?}"
    );

    let mut steps = FakeSteps::new(&project, &registry, vec![]);
    steps.jobs = 1;
    nightly(&steps, true, false).await;
    assert_eq!(steps.baking.lock().unwrap().1, 1);
}

#[tokio::test]
async fn refresh_rebuilds_all_and_a_new_base_image_is_a_changed_parent() {
    let (_dir, project, registry) = setup();
    for role in ["a", "b", "c", "d"] {
        record(&project, &registry, role, &[]);
    }
    let steps = FakeSteps::new(&project, &registry, vec![]);
    let report = nightly(&steps, true, true).await;
    assert_eq!(report.rebuilt(), ["a", "b", "c", "d"]);
    let mut p = planner(&project, &registry, false);
    p.bases = BaseIdentities::from_fn(|_| "local:debian-12-newer".into());
    let d = p.decide("d", &BTreeMap::new()).await;
    let base = "base image".to_owned();
    assert_eq!(d, Decision::Rebuild(Reason::ParentChanged { parent: base }));
}

#[tokio::test]
async fn a_role_follows_the_base_image_of_its_own_release() {
    let (dir, project, registry) = setup();
    record(&project, &registry, "d", &[]);
    let mut p = planner(&project, &registry, false);
    p.bases = BaseIdentities::from_fn(|suite| match suite {
        Suite::Bookworm => BASE.to_owned(),
        _ => "local:debian-13-newer".to_owned(),
    });
    let d = p.decide("d", &BTreeMap::new()).await;
    assert!(matches!(d, Decision::UpToDate { .. }), "{d:?}");
    let path = dir.path().join("recipes/d.toml");
    let recipe = std::fs::read_to_string(&path).unwrap();
    let moved = recipe.replacen("role = \"d\"\n", "role = \"d\"\nbase = \"trixie\"\n", 1);
    std::fs::write(&path, moved).unwrap();
    let project = Project::load(dir.path()).unwrap();
    let mut p = planner(&project, &registry, false);
    p.bases = BaseIdentities::from_fn(|suite| match suite {
        Suite::Bookworm => BASE.to_owned(),
        _ => "local:debian-13-newer".to_owned(),
    });
    let d = p.decide("d", &BTreeMap::new()).await;
    let base = "base image".to_owned();
    assert_eq!(d, Decision::Rebuild(Reason::ParentChanged { parent: base }));
}

#[tokio::test]
async fn an_unreachable_repository_fails_the_decision() {
    let (_dir, project, registry) = setup();
    let list = "127.0.0.1:9_debian_dists_bookworm_InRelease";
    record(&project, &registry, "d", &[(list, &"a".repeat(64))]);
    let d = planner(&project, &registry, false)
        .decide("d", &BTreeMap::new())
        .await;
    let Decision::Fail { error } = d else {
        panic!("{d:?}")
    };
    assert!(
        error.contains(&format!("repository list `{list}` cannot be fetched")),
        "{error}"
    );
}

#[test]
fn the_base_sources_follow_the_suite() {
    let lists = |suite| {
        debian_sources("http://deb.debian.org/debian/", suite)
            .iter()
            .map(AptSource::list_file)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lists(Suite::Trixie),
        [
            "deb.debian.org_debian_dists_trixie_InRelease",
            "deb.debian.org_debian_dists_trixie-updates_InRelease",
            "deb.debian.org_debian_dists_trixie-backports_InRelease",
            "deb.debian.org_debian-security_dists_trixie-security_InRelease",
            "security.debian.org_debian-security_dists_trixie-security_InRelease",
        ]
    );
    let bookworm = lists(Suite::Bookworm);
    assert_eq!(bookworm.len(), 5);
    assert!(
        bookworm.iter().all(|l| l.contains("_bookworm")),
        "{bookworm:?}"
    );
}

#[test]
fn list_file_names_follow_apt() {
    let s = AptSource::new("http://deb.debian.org/debian/", "bookworm");
    assert_eq!(
        s.list_file(),
        "deb.debian.org_debian_dists_bookworm_InRelease"
    );
    assert_eq!(
        s.in_release_url(),
        "http://deb.debian.org/debian/dists/bookworm/InRelease"
    );
    let s = AptSource::new("https://u:p@repo.example:8443/ox_repo/", "stable");
    assert_eq!(
        s.list_file(),
        "repo.example:8443_ox%5frepo_dists_stable_InRelease"
    );
    let flat = AptSource::new("http://h/r", "/");
    assert_eq!(flat.list_file(), "h_r_InRelease");
    assert_eq!(flat.in_release_url(), "http://h/r/InRelease");
    assert_eq!(uri_to_file_name("http://h/a~b c"), "h_a%7eb%20c");
}

#[test]
fn prune_is_needed_only_past_retention() {
    let (_dir, project, registry) = setup();
    record(&project, &registry, "a", &[]);
    record(&project, &registry, "a", &[]);
    record(&project, &registry, "d", &[]);
    assert!(!over_retention(&registry, 2).unwrap());
    assert!(over_retention(&registry, 1).unwrap());
}
