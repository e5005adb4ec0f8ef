//! `oxbake build [ROLE…] [--target T] [--if-changed] [--refresh] [--keep-on-failure]`

use serde_json::json;
use tokio::sync::watch;

use super::Ctx;

use crate::error::Error;
use crate::pipeline::open;
use crate::pipeline::{self, BuildOptions, BuildOutcome};
use crate::registry::Registry;

pub struct BuildArgs<'a> {
    pub roles: &'a [String],
    pub target: Option<&'a str>,
    pub opts: BuildOptions,
}

pub async fn run(ctx: &Ctx<'_>, args: BuildArgs<'_>) -> Result<(), Error> {
    // Watched from the start: an interrupt while the target opens (or the
    // base image is bootstrapped) ends with clean-up and 130 too, not with
    // death by signal.
    super::signals::watching(&ctx.progress, |cancel| build(ctx, args, cancel)).await
}

async fn build(
    ctx: &Ctx<'_>,
    args: BuildArgs<'_>,
    cancel: watch::Receiver<bool>,
) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let roles: Vec<String> = if args.roles.is_empty() {
        project.recipes.keys().cloned().collect()
    } else {
        args.roles.to_vec()
    };
    for role in &roles {
        project.recipe(role).map_err(Error::Usage)?;
    }
    let open =
        open::open_unless_interrupted(&project, args.target, &ctx.progress, true, &cancel).await?;
    let registry = Registry::for_project(&project.root);
    let pctx = ctx.pipeline(&project, &registry, &open, cancel);
    let outcomes = pipeline::build(&pctx, &roles, &args.opts).await?;
    let mut text = String::new();
    for o in &outcomes {
        match o {
            BuildOutcome::Built {
                role, version, log, ..
            } => {
                text.push_str(&format!(
                    "built {role}@{version} (log: {})\n",
                    log.display()
                ));
            }
            BuildOutcome::UpToDate {
                role,
                version,
                inputs,
            } => {
                text.push_str(&format!(
                    "{role}: nothing to do: {role}@{version} was built from the same inputs ({})\n",
                    &inputs[..12]
                ));
            }
        }
    }
    ctx.out
        .result(&text, &json!({ "target": open.name, "roles": outcomes }));
    Ok(())
}
