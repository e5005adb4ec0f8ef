//! `oxbake nightly`: repository change detection against the loopback apt
//! repository (tests/support/aptrepo.rs), and, with the `e2e` feature, the
//! acceptance runs on the local target (a no-op nightly creates no VM; a
//! one-byte template change rebuilds exactly that role and its children).

#[cfg(feature = "e2e")]
mod e2e;

use std::path::Path;

use oxbake::pipeline::RegistryLineage;
use oxbake::project::Project;
use oxbake::registry::{Artifact, NewImage, Parent, Registry, Sha256};
use oxbake::role::inputs;
use oxbake::target::BaseIdentities;
use oxbake::target::local::base::BootstrapOptions;
use sha2::{Digest, Sha256 as Hasher};

use crate::support::aptrepo::{AptRepo, SUITE};
use crate::support::project::Run;

const USER: &str = "ox-customer";
const PASSWORD: &str = "nightly-s3cret-for-tests";

const RECIPE: &str = r#"role = "probe"

[[step]]
name = "probe package"
kind = "apt"
packages = ["oxbake-probe"]

[[step.repository]]
name = "probe"
url = "{{ repo_url }}"
suite = "oxbake"
key = "apt/probe.asc"
username = "ox-customer"
password_secret = "probe_password"
# The loopback test repository speaks plain HTTP.
allow_insecure_credentials = true
"#;

/// A project with one role whose apt step uses the repository.
struct RepoProject {
    dir: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl RepoProject {
    fn new(repo: &AptRepo) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, text: &str| {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "oxbake.toml",
            &format!(
                "[project]\nname = \"t\"\nchannels = [\"dev\"]\n\n[vars]\nrepo_url = \"{}\"\n",
                repo.url()
            ),
        );
        write("recipes/probe.toml", RECIPE);
        write("files/apt/probe.asc", repo.key_armored());
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        let cache = tempfile::tempdir().unwrap();
        Self { dir, cache }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// What `oxbake` computes as the local base identity with no base image
    /// in its cache.
    fn base_identity(&self) -> String {
        let hash =
            BootstrapOptions::new(self.cache.path().to_owned(), Default::default()).recipe_hash();
        format!("local:debian-12-{}", &hash[..16])
    }

    /// Records an image of `probe` built from its current inputs that saw
    /// `repositories`.
    fn record(&self, repositories: &[(String, String)]) {
        let project = Project::load(self.root()).unwrap();
        let registry = Registry::for_project(self.root());
        let lineage = RegistryLineage {
            registry: &registry,
            bases: BaseIdentities::from_fn(|_| self.base_identity()),
        };
        let inputs = inputs::inputs(&project, "probe", &lineage).unwrap();
        let image = NewImage {
            inputs: inputs.hash.parse().unwrap(),
            parent: Parent::Base(self.base_identity()),
            target: "local".into(),
            artifact: Artifact::Local {
                path: ".oxbake/local/templates/probe-1.qcow2".into(),
                sha256: "0".repeat(64).parse().unwrap(),
            },
            repositories: repositories
                .iter()
                .map(|(k, v)| (k.clone(), v.parse::<Sha256>().unwrap()))
                .collect(),
            packages: Default::default(),
            checks: Vec::new(),
            builder: None,
            size: None,
        };
        registry.record("probe", image).unwrap();
    }

    fn plan(&self, password: &str) -> Run {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_oxbake"))
            .arg("-C")
            .arg(self.root())
            .args(["nightly", "--plan", "--json"])
            .env("OXBAKE_CACHE_DIR", self.cache.path())
            .env("OXBAKE_SECRET_PROBE_PASSWORD", password)
            .output()
            .unwrap();
        Run(output)
    }
}

fn in_release(repo: &AptRepo) -> std::path::PathBuf {
    repo.scratch().join(format!("repo/dists/{SUITE}/InRelease"))
}

fn decision(run: &Run) -> serde_json::Value {
    let doc: serde_json::Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout(), run.stderr()));
    doc["roles"][0].clone()
}

#[test]
fn a_changed_in_release_plans_a_rebuild_of_the_role_that_uses_it() {
    let repo = AptRepo::start(USER, PASSWORD);
    let project = RepoProject::new(&repo);
    let list = format!("127.0.0.1:{}_dists_{SUITE}_InRelease", repo.port());
    let digest = hex::encode(Hasher::digest(std::fs::read(in_release(&repo)).unwrap()));
    project.record(&[(list.clone(), digest)]);

    let same = project.plan(PASSWORD);
    assert_eq!(same.code(), 0, "{}", same.stderr());
    let role = decision(&same);
    assert_eq!(role["decision"]["decision"], "up_to_date", "{role}");
    assert_eq!(role["promotion"]["promotion"], "planned");
    let fetched: Vec<_> = repo.requests();
    let asked = fetched
        .iter()
        .find(|r| r.path.ends_with("/InRelease"))
        .unwrap();
    assert!(asked.authorized && asked.status == 200, "{asked:?}");

    // The repository publishes something new: its InRelease changes.
    let mut text = std::fs::read(in_release(&repo)).unwrap();
    text.extend_from_slice(b"\n");
    std::fs::write(in_release(&repo), text).unwrap();
    let changed = project.plan(PASSWORD);
    assert_eq!(changed.code(), 0, "{}", changed.stderr());
    let role = decision(&changed);
    assert_eq!(role["decision"]["reason"], "repository_changed", "{role}");
    assert_eq!(role["decision"]["lists"][0], list.as_str());
}

#[test]
fn a_repository_that_cannot_be_fetched_is_a_failure_not_unchanged() {
    let repo = AptRepo::start(USER, PASSWORD);
    let project = RepoProject::new(&repo);
    let list = format!("127.0.0.1:{}_dists_{SUITE}_InRelease", repo.port());
    project.record(&[(list.clone(), "a".repeat(64))]);
    let wrong = "wrong-password-never-shown";
    let run = project.plan(wrong);
    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let role = decision(&run);
    assert_eq!(role["decision"]["decision"], "fail", "{role}");
    assert_eq!(role["status"], "failed");
    let error = role["error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "repository list `{list}` cannot be fetched: HTTP status 401"
        )),
        "{error}"
    );
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(!all.contains(wrong) && !all.contains(PASSWORD), "{all}");
}
