//! `oxbake build`: which roles to bake, in which order, and why.
//!
//! The roles asked for are baked, each after its ancestors. An ancestor is
//! baked only when no image was built from its current inputs (or with
//! `refresh`). With `if_changed`, a role whose current inputs already have an
//! image is skipped, and the outcome says which image that is.

use std::path::PathBuf;

use serde::Serialize;
use tokio::sync::watch;

use super::builder::Builder;
use super::role_lock::RoleLock;
use super::{BuildError, RegistryLineage};
use crate::guest::GuestConnector;
use crate::progress::Progress;
use crate::project::Project;
use crate::recipe::inputs::{self, Inputs};
use crate::registry::{ImageRecord, Registry, Sha256};
use crate::target::Target;

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Skip a requested role whose inputs already have an image.
    pub if_changed: bool,
    /// Bake every ancestor of the requested roles again, up to date or not
    /// (to pick up package updates).
    pub refresh: bool,
    /// Leave a failed builder VM running and say how to reach it.
    pub keep_on_failure: bool,
}

/// Everything a build talks to.
pub struct Pipeline<'a> {
    pub project: &'a Project,
    pub registry: &'a Registry,
    pub target: &'a dyn Target,
    /// The target's name in oxbake.toml, as recorded in images/.
    pub target_name: String,
    /// What roles without a parent start from (for the inputs hash).
    pub base_identity: String,
    pub connector: &'a dyn GuestConnector,
    pub progress: Progress,
    /// Becomes `true` when the operator interrupts.
    pub cancel: watch::Receiver<bool>,
    pub log_dir: PathBuf,
}

/// What happened to one role.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BuildOutcome {
    Built {
        role: String,
        version: String,
        inputs: String,
        log: PathBuf,
    },
    UpToDate {
        role: String,
        version: String,
        inputs: String,
    },
}

impl Pipeline<'_> {
    /// Bakes `roles` (each after its out-of-date ancestors).
    pub async fn build(
        &self,
        roles: &[String],
        opts: &BuildOptions,
    ) -> Result<Vec<BuildOutcome>, BuildError> {
        let mut outcomes = Vec::new();
        for (role, requested) in self.order(roles) {
            if *self.cancel.borrow() {
                return Err(BuildError::Interrupted);
            }
            // Held while the role is judged and baked: a second build of it
            // waits, then finds what the first one recorded.
            let _lock =
                RoleLock::acquire(&self.locks_dir(), &role, &self.progress, &self.cancel).await?;
            let inputs = self.inputs(&role)?;
            let hash: Sha256 = inputs.hash.parse()?;
            let existing = self.registry.find_by_inputs(&role, &hash)?;
            let skip = match (&existing, requested) {
                (Some(_), true) => opts.if_changed,
                (Some(_), false) => !opts.refresh,
                (None, _) => false,
            };
            if let (true, Some(found)) = (skip, existing) {
                self.progress.info(format!(
                    "{role}: up to date: {role}@{} was built from inputs {}",
                    found.version,
                    &inputs.hash[..12]
                ));
                outcomes.push(BuildOutcome::UpToDate {
                    role,
                    version: found.version.to_string(),
                    inputs: inputs.hash,
                });
                continue;
            }
            let (record, log) = self.build_one(&role, inputs, opts).await?;
            outcomes.push(BuildOutcome::Built {
                role,
                version: record.version.to_string(),
                inputs: record.inputs.to_string(),
                log,
            });
        }
        Ok(outcomes)
    }

    /// Ancestors first, each role once; `true` marks the roles asked for.
    fn order(&self, roles: &[String]) -> Vec<(String, bool)> {
        let mut order: Vec<(String, bool)> = Vec::new();
        for role in roles {
            for file in self.project.lineage(role) {
                let name = file.recipe.role.get_ref().clone();
                let requested = roles.contains(&name);
                if !order.iter().any(|(r, _)| *r == name) {
                    order.push((name, requested));
                }
            }
        }
        order
    }

    /// Where the per-role build locks are (beside the logs).
    pub fn locks_dir(&self) -> PathBuf {
        super::role_lock::locks_dir(&self.log_dir)
    }

    /// Where live runs are marked (beside the logs).
    pub fn runs_dir(&self) -> PathBuf {
        self.log_dir.with_file_name("runs")
    }

    pub fn inputs(&self, role: &str) -> Result<Inputs, BuildError> {
        let lineage = RegistryLineage {
            registry: self.registry,
            base: self.base_identity.clone(),
        };
        Ok(inputs::inputs(self.project, role, &lineage)?)
    }

    async fn build_one(
        &self,
        role: &str,
        inputs: Inputs,
        opts: &BuildOptions,
    ) -> Result<(ImageRecord, PathBuf), BuildError> {
        let parent = match &self
            .project
            .recipe(role)
            .ok()
            .and_then(|f| f.recipe.from.clone())
        {
            Some(parent) => {
                let parent = parent.get_ref();
                let parent_inputs = self.inputs(parent)?;
                let hash: Sha256 = parent_inputs.hash.parse()?;
                let record = self
                    .registry
                    .find_by_inputs(parent, &hash)?
                    .ok_or_else(|| BuildError::ParentMissing {
                        role: role.to_owned(),
                        parent: parent.to_owned(),
                    })?;
                Some(record)
            }
            None => None,
        };
        let builder = Builder::new(self, role, inputs, parent, opts)?;
        builder.run().await
    }
}
