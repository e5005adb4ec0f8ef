//! `oxbake nightly [--refresh] [--plan] [--target T]`: rebuild what changed,
//! promote to the first channel, prune, report.

use serde_json::json;

use super::Ctx;
use crate::config::TargetSettings;
use crate::error::Error;
use crate::pipeline::nightly::{self, Nightly, Planner, RepoFetcher, TargetSteps};
use crate::pipeline::open;
use crate::registry::Registry;
use crate::suite::Suite;
use crate::target::BaseIdentities;
use crate::target::local::base::{BootstrapOptions, default_cache_dir};

pub struct NightlyArgs<'a> {
    pub target: Option<&'a str>,
    pub refresh: bool,
    /// Decide only.
    pub plan: bool,
    /// Roles baked at once (`None`: as many as the target allows).
    pub jobs: Option<u32>,
}

pub async fn run(ctx: &Ctx<'_>, args: NightlyArgs<'_>) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let (_, settings) = project.config.target(args.target)?;
    let fetcher = RepoFetcher::new()
        .map_err(|e| Error::Failed(nightly::chain(&nightly::NightlyError::Http(e))))?;
    let planner = Planner {
        project: &project,
        registry: &registry,
        bases: BaseIdentities::of_target(&settings).await?,
        base_mirror: base_mirror(&settings),
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
        let open = open::open(&project, args.target, &ctx.progress, false).await?;
        let (project, registry, open) = (&project, &registry, &open);
        super::signals::watching(&ctx.progress, |cancel| async move {
            let steps = TargetSteps {
                ctx: ctx.pipeline(project, registry, open, cancel),
                jobs: args.jobs,
            };
            let mut nightly = nightly;
            nightly.steps = Some(&steps);
            nightly.run().await
        })
        .await
    };
    let report = report.map_err(|_| Error::Interrupted)?;
    let json = serde_json::to_value(&report).unwrap_or_else(|_| json!({}));
    ctx.out
        .result(&crate::report::nightly::table(&report), &json);
    if report.ok() {
        Ok(())
    } else {
        Err(Error::Failed(
            "the nightly failed (see the report)".to_owned(),
        ))
    }
}

/// The Debian mirror the target's base images were made from.
fn base_mirror(settings: &TargetSettings) -> String {
    match settings {
        TargetSettings::Local(_) => {
            BootstrapOptions::new(default_cache_dir(), Suite::default()).mirror
        }
        TargetSettings::Proxmox(_) => "http://deb.debian.org/debian".to_owned(),
    }
}
