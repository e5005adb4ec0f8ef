//! What every operation of one command talks to, built once per command:
//! the project, its registry, the opened target, the guest connector,
//! progress, the interrupt and the project's work folders. Operations are
//! functions (or small structs holding only their own knobs) over it.

use std::path::{Path, PathBuf};

use tokio::sync::watch;

use crate::guest::GuestConnector;
use crate::progress::Progress;
use crate::project::Project;
use crate::registry::Registry;
use crate::target::{BaseIdentities, OpenTarget, Target};

/// The shared handles of one command.
pub struct Context<'a> {
    pub project: &'a Project,
    pub registry: &'a Registry,
    pub target: &'a dyn Target,
    /// The target's name in oxbake.toml, as recorded in images/.
    pub target_name: &'a str,
    /// What roles without a parent start from (for the inputs hash).
    pub bases: &'a BaseIdentities,
    pub connector: &'a dyn GuestConnector,
    pub progress: Progress,
    /// Becomes `true` when the operator interrupts.
    pub cancel: watch::Receiver<bool>,
}

impl<'a> Context<'a> {
    /// The context of a command over the target `open`.
    pub fn new(
        project: &'a Project,
        registry: &'a Registry,
        open: &'a OpenTarget,
        connector: &'a dyn GuestConnector,
        progress: Progress,
        cancel: watch::Receiver<bool>,
    ) -> Self {
        Context {
            project,
            registry,
            target: open.target.as_ref(),
            target_name: &open.name,
            bases: &open.bases,
            connector,
            progress,
            cancel,
        }
    }

    /// The project's work folders.
    pub fn dirs(&self) -> WorkDirs {
        WorkDirs::of(&self.project.root)
    }
}

/// The folders under a project's `.oxbake/`, named in one place.
#[derive(Debug, Clone)]
pub struct WorkDirs {
    root: PathBuf,
}

impl WorkDirs {
    /// The work folders of the project at `project_root`.
    pub fn of(project_root: &Path) -> Self {
        WorkDirs {
            root: project_root.join(".oxbake"),
        }
    }

    /// Build logs (`.oxbake/logs`).
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Per-role locks (`.oxbake/locks`).
    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Live runs' markers, so `oxbake gc` leaves their VMs alone
    /// (`.oxbake/runs`).
    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    /// Environments' own SSH keys (`.oxbake/deploy`).
    pub fn deploy_keys(&self) -> PathBuf {
        self.root.join("deploy")
    }

    /// Environments' known hosts (`.oxbake/known_hosts`).
    pub fn known_hosts(&self) -> PathBuf {
        self.root.join("known_hosts")
    }

    /// Short-lived copies, such as a template opened for inspection
    /// (`.oxbake/scratch`).
    pub fn scratch(&self) -> PathBuf {
        self.root.join("scratch")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_folders_live_under_dot_oxbake() {
        let dirs = WorkDirs::of(Path::new("/p"));
        assert_eq!(dirs.logs(), Path::new("/p/.oxbake/logs"));
        assert_eq!(dirs.locks(), Path::new("/p/.oxbake/locks"));
        assert_eq!(dirs.runs(), Path::new("/p/.oxbake/runs"));
        assert_eq!(dirs.deploy_keys(), Path::new("/p/.oxbake/deploy"));
        assert_eq!(dirs.known_hosts(), Path::new("/p/.oxbake/known_hosts"));
    }
}
