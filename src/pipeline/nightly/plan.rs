//! What the nightly does with one role: nothing (up to date), rebuild (and
//! why), or skip it because its parent failed. Deciding builds nothing, so
//! `oxbake nightly --plan` is this module alone.

use std::collections::BTreeMap;

use serde::Serialize;

use super::NightlyError;
use super::repos::{self, RepoFetcher};
use super::sources;
use crate::pipeline::RegistryLineage;
use crate::project::Project;
use crate::registry::{ImageRecord, Parent, Registry, Sha256, Version};
use crate::role::{self, inputs};
use crate::secrets::Secrets;
use crate::target::BaseIdentities;

/// Why a role is baked again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// `--refresh`: every role, to pick up package updates.
    Refresh,
    /// No image of the role yet.
    NeverBuilt,
    /// The recipe, a template or a file changed.
    InputsChanged,
    /// The parent was rebuilt by this nightly.
    ParentRebuilt { parent: String },
    /// The parent (or base image) has a newer image than the one this role
    /// was built from.
    ParentChanged { parent: String },
    /// A package repository's `InRelease` changed (apt list file names).
    RepositoryChanged { lists: Vec<String> },
}

/// The decision for one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    UpToDate {
        version: Version,
    },
    Rebuild(Reason),
    /// Not looked at: the parent failed or was skipped.
    Skip {
        parent: String,
    },
    /// The decision itself failed (a repository could not be fetched...).
    Fail {
        error: String,
    },
}

/// What became of a role earlier in the same nightly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleState {
    UpToDate,
    Rebuilt,
    /// Failed or skipped: its children are skipped.
    Blocked,
}

/// Everything a decision reads.
pub struct Planner<'a> {
    pub project: &'a Project,
    pub registry: &'a Registry,
    /// What roles without a parent start from (as `Pipeline` has it).
    pub bases: BaseIdentities,
    /// The Debian mirror the base images come from (their apt sources are
    /// its suites of the role's release, see [`sources::debian_sources`]).
    pub base_mirror: String,
    pub fetcher: RepoFetcher,
    pub refresh: bool,
}

impl Planner<'_> {
    /// Every role, ancestors first.
    pub fn order(&self) -> Vec<String> {
        let mut order: Vec<String> = Vec::new();
        for role in self.project.recipes.keys() {
            for file in self.project.lineage(role) {
                let name = file.recipe.role.get_ref();
                if !order.contains(name) {
                    order.push(name.clone());
                }
            }
        }
        order
    }

    /// Decides for `role`, given what happened to the roles before it.
    pub async fn decide(&self, role: &str, states: &BTreeMap<String, RoleState>) -> Decision {
        let parent = self.parent(role);
        let parent_state = parent.as_ref().and_then(|p| states.get(p).copied());
        if let (Some(parent), Some(RoleState::Blocked)) = (&parent, parent_state) {
            return Decision::Skip {
                parent: parent.clone(),
            };
        }
        match self.try_decide(role, parent, parent_state).await {
            Ok(decision) => decision,
            Err(e) => Decision::Fail {
                error: super::chain(&e),
            },
        }
    }

    async fn try_decide(
        &self,
        role: &str,
        parent: Option<String>,
        parent_state: Option<RoleState>,
    ) -> Result<Decision, NightlyError> {
        if self.refresh {
            return Ok(Decision::Rebuild(Reason::Refresh));
        }
        let found = self.current(role)?;
        let Some(record) = found else {
            return Ok(Decision::Rebuild(self.why_changed(
                role,
                parent,
                parent_state,
            )?));
        };
        let check = self.repositories(role, &record).await?;
        if let Some((file, why)) = check.failed.first() {
            return Err(NightlyError::Fetch {
                role: role.to_owned(),
                list: file.clone(),
                why: why.clone(),
            });
        }
        if !check.changed.is_empty() {
            let lists = check.changed;
            return Ok(Decision::Rebuild(Reason::RepositoryChanged { lists }));
        }
        Ok(Decision::UpToDate {
            version: record.version,
        })
    }

    /// The image built from the role's current inputs, if any.
    pub fn current(&self, role: &str) -> Result<Option<ImageRecord>, NightlyError> {
        let lineage = RegistryLineage {
            registry: self.registry,
            bases: self.bases.clone(),
        };
        let inputs = inputs::inputs(self.project, role, &lineage)?;
        let hash: Sha256 = inputs.hash.parse()?;
        Ok(self.registry.find_by_inputs(role, &hash)?)
    }

    fn parent(&self, role: &str) -> Option<String> {
        let file = self.project.recipes.get(role)?;
        file.recipe.from.as_ref().map(|p| p.get_ref().clone())
    }

    /// Why no image matches the current inputs.
    fn why_changed(
        &self,
        role: &str,
        parent: Option<String>,
        parent_state: Option<RoleState>,
    ) -> Result<Reason, NightlyError> {
        if let (Some(parent), Some(RoleState::Rebuilt)) = (&parent, parent_state) {
            return Ok(Reason::ParentRebuilt {
                parent: parent.clone(),
            });
        }
        let Some(latest) = self.registry.latest(role, true)? else {
            return Ok(Reason::NeverBuilt);
        };
        let parent_moved = match (&latest.parent, &parent) {
            (Parent::Image { role: p, version }, Some(parent)) if p == parent => self
                .current(parent)?
                .is_some_and(|now| now.version != *version),
            (Parent::Base(identity), None) => {
                identity != self.bases.of(role::suite(self.project, role))
            }
            _ => true,
        };
        Ok(match (parent_moved, parent) {
            (true, Some(parent)) => Reason::ParentChanged { parent },
            (true, None) => Reason::ParentChanged {
                parent: "base image".to_owned(),
            },
            (false, _) => Reason::InputsChanged,
        })
    }

    async fn repositories(
        &self,
        role: &str,
        record: &ImageRecord,
    ) -> Result<repos::RepoCheck, NightlyError> {
        if record.repositories.is_empty() {
            return Ok(repos::RepoCheck::default());
        }
        let steps = sources::step_sources(self.project, role)?;
        let wanted: Vec<_> = steps
            .iter()
            .filter(|s| record.repositories.contains_key(&s.source.list_file()))
            .cloned()
            .collect();
        let names = repos::secret_names(&wanted);
        let config = &self.project.config.secrets;
        let secrets = Secrets::load(&self.project.root, config, names)?;
        let suite = role::suite(self.project, role);
        let base = sources::debian_sources(&self.base_mirror, suite);
        let check = self
            .fetcher
            .check(&record.repositories, &base, &wanted, &secrets)
            .await;
        Ok(check)
    }
}
