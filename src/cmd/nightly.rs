//! `oxbake nightly [--refresh] [--plan] [--target T]`: rebuild what changed,
//! promote to the first channel, prune, report.

use async_trait::async_trait;
use serde_json::json;

use super::{Ctx, targets};
use crate::config::TargetSettings;
use crate::error::Error;
use crate::guest::SshConnector;
use crate::pipeline::nightly::{
    self, AptSource, Nightly, NightlySteps, Planner, RepoFetcher, StepFailure,
};
use crate::pipeline::prune_plan::PruneAction;
use crate::pipeline::{self, BuildOptions, BuildOutcome, Context, PromoteRequest, promote, prune};
use crate::registry::{Registry, Version};
use crate::target::local::base::{BootstrapOptions, default_cache_dir};

pub struct NightlyArgs<'a> {
    pub target: Option<&'a str>,
    pub refresh: bool,
    /// Decide only.
    pub plan: bool,
}

pub async fn run(ctx: &Ctx<'_>, args: NightlyArgs<'_>) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let (_, settings) = targets::settings(&project, args.target)?;
    let fetcher = RepoFetcher::new()
        .map_err(|e| Error::Failed(nightly::chain(&nightly::NightlyError::Http(e))))?;
    let planner = Planner {
        project: &project,
        registry: &registry,
        base_identity: crate::target::base_identity(&settings).await?,
        base_sources: base_sources(&settings),
        fetcher,
        refresh: args.refresh,
    };
    let channel = project.config.project.channels.first().cloned();
    let nightly = Nightly {
        planner,
        steps: None,
        channel,
        progress: ctx.progress.clone(),
    };
    let report = if args.plan {
        nightly.run().await
    } else {
        let open = targets::open(&project, args.target, &ctx.progress, false).await?;
        let (project, registry, open) = (&project, &registry, &open);
        super::signals::watching(&ctx.progress, |cancel| async move {
            let steps = PipelineSteps {
                ctx: Context::new(
                    project,
                    registry,
                    open,
                    &SshConnector,
                    ctx.progress.clone(),
                    cancel,
                ),
            };
            let mut nightly = nightly;
            nightly.steps = Some(&steps);
            nightly.run().await
        })
        .await
    };
    let report = report.map_err(|_| Error::Interrupted)?;
    let json = serde_json::to_value(&report).unwrap_or_else(|_| json!({}));
    ctx.out.result(&report.table(), &json);
    if report.ok() {
        Ok(())
    } else {
        Err(Error::Failed(
            "the nightly failed (see the report)".to_owned(),
        ))
    }
}

/// The Debian sources of the target's base image.
fn base_sources(settings: &TargetSettings) -> Vec<AptSource> {
    match settings {
        TargetSettings::Local(_) => {
            nightly::debian_sources(&BootstrapOptions::new(default_cache_dir()).mirror)
        }
        TargetSettings::Proxmox(_) => nightly::debian_sources("http://deb.debian.org/debian"),
    }
}

/// The nightly's steps on a real target.
struct PipelineSteps<'a> {
    ctx: Context<'a>,
}

#[async_trait]
impl NightlySteps for PipelineSteps<'_> {
    async fn build(&self, role: &str) -> Result<Version, StepFailure> {
        let roles = [role.to_owned()];
        let outcomes = pipeline::build(&self.ctx, &roles, &BuildOptions::default())
            .await
            .map_err(|e| match e.is_interrupted() {
                true => StepFailure::Interrupted,
                false => StepFailure::Failed(nightly::chain(&e)),
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
                false => StepFailure::Failed(nightly::chain(&e)),
            })
    }

    async fn prune(&self) -> Result<Vec<String>, StepFailure> {
        let ctx = &self.ctx;
        let keep = ctx.project.config.retention.keep as usize;
        match nightly::over_retention(ctx.registry, keep) {
            Ok(false) => return Ok(Vec::new()),
            Ok(true) => {}
            Err(e) => return Err(StepFailure::Failed(nightly::chain(&e))),
        }
        let report = prune::prune(ctx, keep, false)
            .await
            .map_err(|e| StepFailure::Failed(nightly::chain(&e)))?;
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
