//! `oxbake promote`, `oxbake rollback` and `oxbake revoke`.

use serde_json::json;
use tokio::sync::watch;

use super::Ctx;
use crate::error::Error;
use crate::guest::SshConnector;
use crate::pipeline::open;
use crate::pipeline::promote::{self, PromoteRequest, operator};
use crate::pipeline::revoke;
use crate::pipeline::rollback::{self, RollbackRequest};
use crate::registry::{Registry, Version};

pub struct PromoteArgs<'a> {
    pub role: &'a str,
    pub version: &'a str,
    pub channel: &'a str,
    pub force: bool,
    pub reason: Option<&'a str>,
    pub target: Option<&'a str>,
}

pub async fn promote(ctx: &Ctx<'_>, args: &PromoteArgs<'_>) -> Result<(), Error> {
    // Watched from the start: an interrupt while the target opens, while
    // waiting for the role's lock or during the smoke test ends with the
    // smoke VM removed, the channel unchanged and exit 130.
    super::signals::watching(&ctx.progress, |cancel| promote_watched(ctx, args, cancel)).await
}

async fn promote_watched(
    ctx: &Ctx<'_>,
    args: &PromoteArgs<'_>,
    cancel: watch::Receiver<bool>,
) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let who = operator();
    let req = PromoteRequest {
        role: args.role,
        version: args.version.parse::<Version>()?,
        channel: args.channel,
        force: args.force,
        reason: args.reason,
        who: &who,
    };
    let (outcome, target) = promote::open_and_promote(
        &project,
        &registry,
        &req,
        args.target,
        &SshConnector,
        &ctx.progress,
        cancel,
    )
    .await?;
    let image = format!("{}@{}", outcome.role, outcome.version);
    let text = match (&outcome.changed, &outcome.from, &outcome.smoke) {
        (false, _, _) => format!("`{image}` is already in channel `{}`\n", outcome.channel),
        (true, from, smoke) => {
            let was = from
                .as_ref()
                .map_or("nothing".to_owned(), |f| format!("{}@{f}", outcome.role));
            let checks = smoke
                .as_ref()
                .map_or(0, |s| s.hygiene.len() + s.checks.len());
            format!(
                "promoted `{image}` to channel `{}` (was {was}); smoke test: {checks} checks passed\n",
                outcome.channel
            )
        }
    };
    ctx.out
        .result(&text, &json!({ "target": target, "promotion": outcome }));
    Ok(())
}

pub async fn rollback(
    ctx: &Ctx<'_>,
    role: &str,
    channel: &str,
    reason: Option<&str>,
    target: Option<&str>,
) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    // The templates live where the channel's image was built, like promote
    // and revoke assume; without a current image (or one whose record is
    // missing or unreadable: what a rollback mends) the default target.
    let current = registry.channels()?.get(channel, role);
    let built_on = current.and_then(|v| registry.get(role, &v).ok().map(|r| r.target));
    let target = target.or(built_on.as_deref());
    let open = open::open(&project, target, &ctx.progress, false).await?;
    let who = operator();
    let req = RollbackRequest {
        role,
        channel,
        who: &who,
        why: reason.unwrap_or("rollback"),
    };
    let change = rollback::rollback(
        &project,
        &registry,
        (open.target.as_ref(), &open.name),
        &req,
        &ctx.progress,
    )
    .await?;
    let from = change.from.map_or("nothing".to_owned(), |v| v.to_string());
    let text = format!(
        "channel `{channel}` of `{role}`: rolled back from {from} to {}\n",
        change.to
    );
    ctx.out.result(&text, &json!({ "rollback": change }));
    Ok(())
}

pub async fn revoke(
    ctx: &Ctx<'_>,
    role: &str,
    version: &str,
    reason: &str,
    target: Option<&str>,
) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let version: Version = version.parse()?;
    let record = registry.get(role, &version)?;
    let opened = open::open(
        &project,
        Some(target.unwrap_or(&record.target)),
        &ctx.progress,
        false,
    )
    .await;
    let open = match opened {
        Ok(open) => open,
        Err(e) => {
            revoke::revoke_unreached(
                &registry,
                role,
                &version,
                reason,
                &operator(),
                &ctx.progress,
            )?;
            return Err(e.into());
        }
    };
    let outcome = revoke::revoke(
        &registry,
        open.target.as_ref(),
        role,
        &version,
        reason,
        &operator(),
    )
    .await?;
    let mut text = format!("revoked `{}`: {reason}\n", record.id());
    if outcome.deployed.is_empty() {
        text.push_str(&format!(
            "no deployed VM on target `{}` runs it\n",
            open.name
        ));
    } else {
        text.push_str(&format!(
            "deployed VMs on target `{}` that still run it (replace them): {}\n",
            open.name,
            outcome.deployed.join(", ")
        ));
    }
    if !outcome.channels.is_empty() {
        text.push_str(&format!(
            "channels that still point at it (roll them back): {}\n",
            outcome.channels.join(", ")
        ));
    }
    ctx.out.result(
        &text,
        &json!({ "target": open.name, "revocation": outcome }),
    );
    Ok(())
}
