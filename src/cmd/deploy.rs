//! `oxbake deploy ENV [--plan]` and `oxbake destroy ENV`

use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use super::Ctx;
use crate::environment::Environment;
use crate::error::Error;
use crate::pipeline::deploy::{DeployError, Deployer};
use crate::pipeline::open;
use crate::project::Project;
use crate::registry::Registry;

pub async fn run(
    ctx: &Ctx<'_>,
    env: &str,
    plan_only: bool,
    jobs: Option<u32>,
) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let jobs = jobs.map(|j| j as usize);
    with_deployer(ctx, &project, &registry, (env, jobs), async |d| {
        let prepared = d.prepare().await?;
        let table = crate::report::deploy::plan(&prepared.plan);
        if plan_only {
            let jobs = d.jobs_for(&prepared);
            let text = if prepared.plan.is_noop() {
                format!("{table}nothing to do: environment `{env}` is up to date\n")
            } else {
                format!("{table}at most {jobs} vm(s) at once\n")
            };
            let doc = json!({ "env": env, "plan": prepared.plan, "jobs": jobs });
            ctx.out.result(&text, &doc);
            return Ok(());
        }
        let noop = prepared.plan.is_noop();
        let done = d.apply(prepared).await?;
        let mut text = String::new();
        for step in &done {
            let replaced = step
                .replaced
                .as_ref()
                .map(|old| format!(" (replaces {old})"))
                .unwrap_or_default();
            text.push_str(&format!(
                "{} {} {}{replaced}\n",
                step.action, step.role, step.vm
            ));
        }
        if noop {
            text.push_str(&format!(
                "nothing to do: environment `{env}` is up to date\n"
            ));
        }
        ctx.out.result(&text, &json!({ "env": env, "done": done }));
        Ok(())
    })
    .await
}

pub async fn destroy(ctx: &Ctx<'_>, env: &str, all: bool) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    with_deployer(ctx, &project, &registry, (env, None), async |d| {
        let (gone, kept) = d.destroy_all(all).await?;
        let mut text: String = gone.iter().map(|vm| format!("destroyed {vm}\n")).collect();
        for vm in &kept {
            text.push_str(&format!(
                "kept {vm}: its role keeps data (`oxbake destroy {env} --all` destroys it too)\n"
            ));
        }
        ctx.out.result(
            &text,
            &json!({ "env": env, "destroyed": gone, "kept": kept }),
        );
        Ok(())
    })
    .await
}

pub(super) async fn with_deployer<T>(
    ctx: &Ctx<'_>,
    project: &Project,
    registry: &Registry,
    (env_name, jobs): (&str, Option<usize>),
    body: impl AsyncFnOnce(&Deployer<'_>) -> Result<T, DeployError>,
) -> Result<T, Error> {
    let env = project
        .config
        .environments
        .get(env_name)
        .ok_or_else(|| DeployError::UnknownEnv(env_name.to_owned()))?;
    // An interrupt ends the work with clean-up and exit 130 (see apply).
    let watched = |cancel| watched(ctx, project, registry, (env_name, env, jobs), cancel, body);
    super::signals::watching(&ctx.progress, watched).await
}

async fn watched<T>(
    ctx: &Ctx<'_>,
    project: &Project,
    registry: &Registry,
    (env_name, env, jobs): (&str, &Environment, Option<usize>),
    cancel: watch::Receiver<bool>,
    body: impl AsyncFnOnce(&Deployer<'_>) -> Result<T, DeployError>,
) -> Result<T, Error> {
    let target_name = env.target_name(&project.config.project.default_target);
    let name = Some(target_name);
    let open = open::open_unless_interrupted(project, name, &ctx.progress, false, &cancel).await?;
    let pctx = ctx.pipeline(project, registry, &open, cancel);
    let deployer = Deployer {
        ctx: &pctx,
        env_name,
        env,
        boot_timeout: Duration::from_secs(project.config.defaults.boot_timeout),
        jobs,
    };
    Ok(body(&deployer).await?)
}
