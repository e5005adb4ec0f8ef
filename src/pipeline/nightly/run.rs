//! The nightly run: every role through [`Planner`], then the bake, the
//! promotion to the first channel and the prune, each behind
//! [`NightlySteps`] so the order of things is tested without VMs. A role is
//! decided once its parent is done; roles whose parents are done are handled
//! at the same time, at most [`NightlySteps::jobs`] at once (see
//! [`crate::pipeline::build::dag`]). A failed role skips only its
//! descendants; an interrupt starts no other role.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;

use super::plan::{Decision, Planner, RoleState};
use super::report::{NightlyReport, Promotion, RoleReport, Status};
use crate::pipeline::build::dag;
use crate::progress::Progress;
use crate::registry::{Channels, Version};

/// Why a step did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepFailure {
    /// The operator interrupted: the nightly stops.
    Interrupted,
    /// The step failed (the message and its causes); the nightly goes on
    /// with the roles that do not depend on it.
    Failed(String),
}

/// What the nightly does besides deciding.
#[async_trait]
pub trait NightlySteps: Send + Sync {
    /// Bakes `role` (its ancestors are current) and returns the new version.
    async fn build(&self, role: &str) -> Result<Version, StepFailure>;
    /// Promotes `role@version` to `channel` through the gates.
    async fn promote(
        &self,
        role: &str,
        version: &Version,
        channel: &str,
    ) -> Result<(), StepFailure>;
    /// Applies the retention policy; returns the removed `role@version`s.
    async fn prune(&self) -> Result<Vec<String>, StepFailure>;
    /// How many roles are handled (decided, baked, promoted) at once.
    fn jobs(&self) -> usize {
        1
    }
}

pub struct Nightly<'a> {
    pub planner: Planner<'a>,
    /// None: decide only (`--plan`); nothing is built, promoted or pruned.
    pub steps: Option<&'a dyn NightlySteps>,
    /// Where new images go (the project's first channel), if any.
    pub channel: Option<String>,
    pub progress: Progress,
}

impl Nightly<'_> {
    /// Runs the nightly; fails only when interrupted (every other failure is
    /// in the report).
    pub async fn run(&self) -> Result<NightlyReport, StepFailure> {
        let started = Instant::now();
        // Read once: each role's entry changes only by its own promotion.
        let channels = self
            .planner
            .registry
            .channels()
            .map_err(|e| super::chain(&e));
        let roles = self.roles(&channels).await?;
        // A channel that points at a version without a usable record fails
        // the nightly (deploys of it would fail); `rollback` mends it.
        let channel_problems = match self.planner.registry.channel_problems() {
            Ok(problems) => problems.iter().map(ToString::to_string).collect(),
            Err(e) => vec![super::chain(&e)],
        };
        let mut report = NightlyReport {
            plan: self.steps.is_none(),
            roles,
            channel_problems,
            pruned: Vec::new(),
            prune_error: None,
            seconds: 0.0,
        };
        if let Some(steps) = self.steps {
            match steps.prune().await {
                Ok(pruned) => report.set_pruned(pruned),
                Err(StepFailure::Interrupted) => return Err(StepFailure::Interrupted),
                Err(StepFailure::Failed(e)) => report.prune_error = Some(e),
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Every role's report, ancestors first; each role is decided after
    /// its parent is done (its state is what the decision reads).
    async fn roles(
        &self,
        channels: &Result<Channels, String>,
    ) -> Result<Vec<RoleReport>, StepFailure> {
        let order = self.planner.order();
        let recipes = &self.planner.project.recipes;
        let parents: Vec<Option<usize>> = order
            .iter()
            .map(|role| {
                let parent = recipes.get(role)?.recipe.from.as_ref()?.get_ref();
                order.iter().position(|r| r == parent)
            })
            .collect();
        let jobs = self.steps.map_or(1, |s| s.jobs());
        let states: Mutex<BTreeMap<String, RoleState>> = Mutex::default();
        let snapshot = |m: &Mutex<BTreeMap<String, RoleState>>| {
            m.lock().unwrap_or_else(PoisonError::into_inner).clone()
        };
        // Nothing stops the roles but an interrupt, which a role's step
        // returns as an `Err` (its sibling steps see the same interrupt).
        let never = crate::pipeline::cancel::never();
        let results = dag::run(&parents, jobs, &never, |i| {
            let (role, states) = (&order[i], &states);
            async move {
                let before = snapshot(states);
                let (report, state) = self.role(role, &before, channels).await?;
                states
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(role.clone(), state);
                Ok(report)
            }
        })
        .await;
        let mut roles = Vec::new();
        for result in results.into_iter().flatten() {
            roles.push(result?);
        }
        Ok(roles)
    }

    async fn role(
        &self,
        role: &str,
        states: &BTreeMap<String, RoleState>,
        channels: &Result<Channels, String>,
    ) -> Result<(RoleReport, RoleState), StepFailure> {
        let started = Instant::now();
        let decision = self.planner.decide(role, states).await;
        self.progress.info(format!(
            "nightly: {role}: {}",
            super::report::describe(&decision)
        ));
        let mut report = RoleReport::new(role, decision.clone());
        let state = match decision {
            Decision::Skip { .. } => {
                report.status = Status::Skipped;
                RoleState::Blocked
            }
            Decision::Fail { error } => {
                report.fail(error);
                RoleState::Blocked
            }
            Decision::Rebuild(_) => match self.build(role).await {
                Ok(Some(version)) => {
                    self.promote(&mut report, version, channels).await?;
                    RoleState::Rebuilt
                }
                Ok(None) => RoleState::Rebuilt,
                Err(StepFailure::Interrupted) => return Err(StepFailure::Interrupted),
                Err(StepFailure::Failed(e)) => {
                    report.fail(e);
                    RoleState::Blocked
                }
            },
            Decision::UpToDate { version } => {
                self.promote(&mut report, version, channels).await?;
                RoleState::UpToDate
            }
        };
        report.seconds = started.elapsed().as_secs_f64();
        Ok((report, state))
    }

    /// Bakes `role`; with `--plan` the current version stays (none is new).
    async fn build(&self, role: &str) -> Result<Option<Version>, StepFailure> {
        match self.steps {
            Some(steps) => steps.build(role).await.map(Some),
            None => Ok(None),
        }
    }

    /// Puts `version` into the first channel unless it is there already.
    async fn promote(
        &self,
        report: &mut RoleReport,
        version: Version,
        channels: &Result<Channels, String>,
    ) -> Result<(), StepFailure> {
        report.version = Some(version);
        let Some(channel) = &self.channel else {
            return Ok(());
        };
        let current = match channels {
            Ok(channels) => channels.get(channel, &report.role),
            Err(e) => {
                report.fail(e.clone());
                return Ok(());
            }
        };
        let channel = channel.clone();
        report.promotion = Some(if current == Some(version) {
            Promotion::AlreadyIn { channel }
        } else if let Some(steps) = self.steps {
            match steps.promote(&report.role, &version, &channel).await {
                Ok(()) => Promotion::Promoted { channel },
                Err(StepFailure::Interrupted) => return Err(StepFailure::Interrupted),
                Err(StepFailure::Failed(error)) => {
                    report.fail(error.clone());
                    Promotion::Failed { channel, error }
                }
            }
        } else {
            Promotion::Planned { channel }
        });
        Ok(())
    }
}
