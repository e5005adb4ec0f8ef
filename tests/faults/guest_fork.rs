//! The promote and deploy rows with a running guest (feature `e2e`) work on
//! a fork of the shared baked fixture: its records and (hard-linked)
//! template files, so nothing is baked again, in a project of their own
//! whose `base` recipe has one test check instead of its own (the rows
//! rewrite it) and a `fx` environment of one VM on the local target.

use std::path::{Path, PathBuf};

use oxbake::progress::Progress;
use oxbake::registry::{Registry, Version};
use oxbake::target::local::{AccelMode, LocalTarget};
use oxbake::target::{Source, Target, VmHandle};

use super::{earlier, leftovers};
use crate::support::e2e::Baked;
use crate::support::project::{TestProject, copy_tree};

const ENV: &str = "\n[environments.fx]\nchannel = \"dev\"\nuser = \"ops\"\nssh_keys = []\n\n\
    [environments.fx.network]\nprefix = 24\ngateway = \"10.98.0.1\"\n\n\
    [environments.fx.roles.base]\naddresses = [\"10.98.0.10\"]\n";

pub struct Fork {
    pub project: TestProject,
    /// The fixture's `base` image.
    pub version: Version,
    /// `recipes/base.toml` up to its first check.
    recipe_head: String,
}

impl Fork {
    pub fn new(baked: &Baked) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-promote-deploy");
        let project = TestProject::copy_to(&dir);
        let from = baked.project.root();
        copy_tree(&from.join("images"), &dir.join("images"));
        link_tree(
            &from.join(".oxbake/local/templates"),
            &dir.join(".oxbake/local/templates"),
        );
        let config = project
            .read("oxbake.toml")
            .replace("accel = \"auto\"", "accel = \"tcg\"");
        project.write("oxbake.toml", &(config + ENV));
        let recipe = project.read("recipes/base.toml");
        let head = recipe
            .find("\n[[check]]")
            .map_or(&recipe[..], |at| &recipe[..at]);
        let version = Registry::for_project(&dir)
            .latest("base", true)
            .expect("the fixture's registry")
            .expect("a baked base")
            .version;
        Self {
            recipe_head: head.to_owned(),
            project,
            version,
        }
    }

    /// Gives `base` this one check (`run` as root).
    pub fn check(&self, name: &str, run: &str) {
        let text = format!(
            "{}\n[[check]]\nname = \"{name}\"\nrun = '''{run}'''\n",
            self.recipe_head
        );
        self.project.write("recipes/base.toml", &text);
    }

    pub fn root(&self) -> &Path {
        self.project.root()
    }

    pub fn target(&self) -> LocalTarget {
        LocalTarget::new(self.root(), None, AccelMode::Tcg, Progress::silent())
    }

    /// Everything of the local target under the project except the
    /// earlier VM (its folder and its QEMU process).
    pub fn leftovers(&self, templates: &[String], earlier: Option<&Earlier>) -> Vec<String> {
        let mut left = leftovers::local(self.root(), templates);
        if let Some(e) = earlier {
            // Stop-first stops the earlier VM and starts it again: its QEMU
            // may have another pid now, but it must run from its folder.
            let running = leftovers::qemu_pids(&e.dir);
            let mut own = vec![format!("vm folder {}", e.vm.name)];
            own.extend(running.iter().map(|p| format!("qemu process {p}")));
            left.retain(|l| !own.contains(l));
            if running.is_empty() {
                left.push(format!("earlier vm `{}` is no longer running", e.vm.name));
            }
        }
        left
    }
}

/// The environment's VM from before the deploy: `fx-base-1`, an older
/// version, made and started through oxbake's local target.
pub struct Earlier {
    pub vm: VmHandle,
    pub dir: PathBuf,
}

impl Earlier {
    pub fn start(fork: &Fork, runtime: &tokio::runtime::Runtime) -> Self {
        let registry = Registry::for_project(fork.root());
        let record = registry.get("base", &fork.version).expect("base record");
        let template = oxbake::pipeline::artifact::template_of(&record, fork.root());
        let vm = earlier::start(runtime, &fork.target(), Source::Template(template));
        let dir = fork.root().join(".oxbake/local/vms").join(&vm.name);
        assert!(!leftovers::qemu_pids(&dir).is_empty(), "its QEMU runs");
        Self { vm, dir }
    }

    pub fn destroy(self, fork: &Fork, runtime: &tokio::runtime::Runtime) {
        let _ = runtime.block_on(fork.target().destroy(&self.vm));
    }
}

/// Hard links every file of `from` into `to` (templates are read-only).
fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("the fixture's templates") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            link_tree(&entry.path(), &target);
        } else {
            std::fs::hard_link(entry.path(), &target).expect("link a template");
        }
    }
}
