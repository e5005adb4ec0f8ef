//! What the nightly did, role by role (shown as a table by
//! [`crate::report::nightly`], or as one JSON document).

use serde::Serialize;

use super::plan::{Decision, Reason};
use crate::registry::Version;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Failed,
    /// Its parent failed or was skipped.
    Skipped,
}

/// What became of the role's current image and the first channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "promotion", rename_all = "snake_case")]
pub enum Promotion {
    AlreadyIn {
        channel: String,
    },
    Promoted {
        channel: String,
    },
    /// `--plan`: it would be promoted.
    Planned {
        channel: String,
    },
    Failed {
        channel: String,
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct RoleReport {
    pub role: String,
    pub decision: Decision,
    pub status: Status,
    /// The role's current version after the nightly (new or kept).
    pub version: Option<Version>,
    pub promotion: Option<Promotion>,
    /// Versions of the role the prune removed.
    pub pruned: Vec<String>,
    /// What went wrong (decision, build or promotion).
    pub error: Option<String>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct NightlyReport {
    /// Only decided (`--plan`): nothing was built, promoted or pruned.
    pub plan: bool,
    pub roles: Vec<RoleReport>,
    /// Channels that point at a missing or unreadable version, each as
    /// `images/channels.toml:LINE:COLUMN: message`.
    pub channel_problems: Vec<String>,
    /// Every `role@version` the prune removed.
    pub pruned: Vec<String>,
    pub prune_error: Option<String>,
    pub seconds: f64,
}

impl RoleReport {
    pub fn new(role: &str, decision: Decision) -> Self {
        Self {
            role: role.to_owned(),
            decision,
            status: Status::Ok,
            version: None,
            promotion: None,
            pruned: Vec::new(),
            error: None,
            seconds: 0.0,
        }
    }

    pub fn fail(&mut self, error: String) {
        self.status = Status::Failed;
        self.error.get_or_insert(error);
    }
}

impl NightlyReport {
    /// Nothing failed (a skipped role counts as failed: it was not checked).
    pub fn ok(&self) -> bool {
        self.prune_error.is_none()
            && self.channel_problems.is_empty()
            && self.roles.iter().all(|r| r.status == Status::Ok)
    }

    /// The roles rebuilt (or, with `--plan`, to be rebuilt).
    pub fn rebuilt(&self) -> Vec<&str> {
        self.roles
            .iter()
            .filter(|r| matches!(r.decision, Decision::Rebuild(_)))
            .map(|r| r.role.as_str())
            .collect()
    }

    pub fn set_pruned(&mut self, pruned: Vec<String>) {
        for role in &mut self.roles {
            let prefix = format!("{}@", role.role);
            role.pruned = pruned
                .iter()
                .filter(|id| id.starts_with(&prefix))
                .cloned()
                .collect();
        }
        self.pruned = pruned;
    }
}

/// One phrase: `up to date`, `rebuild: inputs changed`, ...
pub fn describe(decision: &Decision) -> String {
    match decision {
        Decision::UpToDate { .. } => "up to date".to_owned(),
        Decision::Skip { parent } => format!("skipped: parent `{parent}` failed"),
        Decision::Fail { .. } => "cannot decide".to_owned(),
        Decision::Rebuild(reason) => format!("rebuild: {}", reason_text(reason)),
    }
}

fn reason_text(reason: &Reason) -> String {
    match reason {
        Reason::Refresh => "--refresh".to_owned(),
        Reason::NeverBuilt => "never built".to_owned(),
        Reason::InputsChanged => "inputs changed".to_owned(),
        Reason::ParentRebuilt { parent } => format!("parent `{parent}` rebuilt"),
        Reason::ParentChanged { parent } => format!("parent `{parent}` changed"),
        Reason::RepositoryChanged { lists } => {
            format!("repository changed ({})", lists.join(", "))
        }
    }
}
