//! The nightly run: every role in dependency order through [`Planner`], then
//! the bake, the promotion to the first channel and the prune, each behind
//! [`NightlySteps`] so the order of things is tested without VMs.

use std::collections::BTreeMap;
use std::time::Instant;

use async_trait::async_trait;

use super::plan::{Decision, Planner, RoleState};
use super::report::{NightlyReport, Promotion, RoleReport, Status};
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
        let mut states = BTreeMap::new();
        let mut roles = Vec::new();
        // Read once: each role's entry changes only by its own promotion.
        let channels = self
            .planner
            .registry
            .channels()
            .map_err(|e| super::chain(&e));
        for role in self.planner.order() {
            let (report, state) = self.role(&role, &states, &channels).await?;
            states.insert(role, state);
            roles.push(report);
        }
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
