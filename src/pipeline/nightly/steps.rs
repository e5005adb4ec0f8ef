//! The nightly's steps on a real target: build, promote through the gates
//! (and the role's lock, as `oxbake promote` does) and prune, over the
//! command's [`Context`].

use async_trait::async_trait;

use super::{NightlySteps, StepFailure};
use crate::pipeline::prune_plan::PruneAction;
use crate::pipeline::{self, BuildOptions, BuildOutcome, Context, PromoteRequest, promote, prune};
use crate::registry::Version;

/// The nightly's steps on the context's target.
pub struct TargetSteps<'a> {
    pub ctx: Context<'a>,
    /// `--jobs`: roles handled at once (`None`: as many as the target
    /// allows, as for `oxbake build`).
    pub jobs: Option<u32>,
}

#[async_trait]
impl NightlySteps for TargetSteps<'_> {
    async fn build(&self, role: &str) -> Result<Version, StepFailure> {
        let roles = [role.to_owned()];
        // The nightly bakes one role per call (its ancestors are current);
        // it runs several such calls at once itself.
        let opts = BuildOptions {
            jobs: Some(1),
            ..BuildOptions::default()
        };
        let outcomes = pipeline::build(&self.ctx, &roles, &opts)
            .await
            .map_err(|e| match e.is_interrupted() {
                true => StepFailure::Interrupted,
                false => StepFailure::Failed(super::chain(&e)),
            })?;
        let version = outcomes.iter().find_map(|o| match o {
            BuildOutcome::Built {
                role: r, version, ..
            } if r == role => Some(version),
            _ => None,
        });
        version
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StepFailure::Failed(format!("role `{role}`: the build made no image")))
    }

    async fn promote(
        &self,
        role: &str,
        version: &Version,
        channel: &str,
    ) -> Result<(), StepFailure> {
        let who = promote::operator();
        let req = PromoteRequest {
            role,
            version: *version,
            channel,
            force: false,
            reason: Some("nightly"),
            who: &who,
        };
        promote::promote(&self.ctx, &req)
            .await
            .map(drop)
            .map_err(|e| match e.is_interrupted() {
                true => StepFailure::Interrupted,
                false => StepFailure::Failed(super::chain(&e)),
            })
    }

    fn jobs(&self) -> usize {
        pipeline::build::jobs(&self.ctx, self.jobs)
    }

    async fn prune(&self) -> Result<Vec<String>, StepFailure> {
        let ctx = &self.ctx;
        let keep = ctx.project.config.retention.keep as usize;
        match super::over_retention(ctx.registry, keep) {
            Ok(false) => return Ok(Vec::new()),
            Ok(true) => {}
            Err(e) => return Err(StepFailure::Failed(super::chain(&e))),
        }
        let report = prune::prune(ctx, keep, false)
            .await
            .map_err(|e| StepFailure::Failed(super::chain(&e)))?;
        let ids = |action: PruneAction| -> Vec<String> {
            report
                .entries
                .iter()
                .filter(|e| e.action == action)
                .map(|e| format!("{}@{}", e.role, e.version))
                .collect()
        };
        let failed = ids(PruneAction::Failed);
        if !failed.is_empty() {
            let failed = failed.join(", ");
            return Err(StepFailure::Failed(format!(
                "prune: cannot remove {failed}"
            )));
        }
        Ok(ids(PruneAction::Removed))
    }
}
