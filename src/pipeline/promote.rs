//! `oxbake promote ROLE VERSION --to CHANNEL`: gated promotion.
//!
//! The gates, in order, each refusal naming the image: the version exists
//! and its build-time checks passed; it is not revoked; the channel is one
//! of `[project].channels`; the version is in the channel before it (or
//! `force` with a reason, recorded in the history); and a smoke test passes
//! (a fresh clone booted with real cloud-init runs the role's checks and
//! the hygiene checks). Only then does `images/channels.toml` change; on
//! Proxmox the `ch-CHANNEL` tags follow.

use std::time::Duration;

use serde::Serialize;

use super::channel_error::PromoteError;
use super::channel_tags;
use super::context::Context;
use super::open;
use super::role_lock::RoleLock;
use super::smoke::SmokeError;
use super::smoke::{Smoke, SmokeReport};
use crate::guest::GuestConnector;
use crate::progress::Progress;
use crate::project::Project;
use crate::registry::{ImageRecord, Registry, Version};
use crate::role::Role;

/// One promotion.
#[derive(Debug, Clone)]
pub struct PromoteRequest<'a> {
    pub role: &'a str,
    pub version: Version,
    pub channel: &'a str,
    /// Skip the previous-channel gate (needs `reason`).
    pub force: bool,
    /// Why, recorded in the history.
    pub reason: Option<&'a str>,
    /// Who, recorded in the history (see [`operator`]).
    pub who: &'a str,
}

/// What a promotion did.
#[derive(Debug, Clone, Serialize)]
pub struct PromoteOutcome {
    pub role: String,
    pub version: String,
    pub channel: String,
    /// The version the channel pointed at before.
    pub from: Option<String>,
    /// False when the channel already pointed at the version (then no smoke
    /// test ran and nothing was written).
    pub changed: bool,
    pub forced: bool,
    pub smoke: Option<SmokeReport>,
}

/// Who is recorded in the history: `$USER`, else `oxbake`.
pub fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "oxbake".to_owned())
}

/// `oxbake promote` from the start: the gates that need no target refuse
/// first, then the target the image was built on (or `target`) is opened
/// (given up if the operator interrupts), then [`promote`]. Returns the
/// outcome and the name of the target.
pub async fn open_and_promote(
    project: &Project,
    registry: &Registry,
    req: &PromoteRequest<'_>,
    target: Option<&str>,
    connector: &dyn GuestConnector,
    progress: &Progress,
    cancel: tokio::sync::watch::Receiver<bool>,
) -> Result<(PromoteOutcome, String), PromoteError> {
    let record = gates(project, registry, req)?;
    let name = Some(target.unwrap_or(&record.target));
    let opened = open::open_unless_interrupted(project, name, progress, false, &cancel).await?;
    let ctx = Context::new(
        project,
        registry,
        &opened,
        connector,
        progress.clone(),
        cancel,
    );
    let outcome = promote(&ctx, req).await?;
    Ok((outcome, opened.name.clone()))
}

/// Takes the role's lock, runs the gates and, if every one passes, points
/// the channel at the image. Every caller (`oxbake promote`, the nightly)
/// goes through the lock: one promotion or bake of a role at a time, and a
/// second one waits, then judges again (the first may have done its work).
pub async fn promote(
    ctx: &Context<'_>,
    req: &PromoteRequest<'_>,
) -> Result<PromoteOutcome, PromoteError> {
    let locks = ctx.dirs().locks();
    let _lock = RoleLock::acquire(&locks, req.role, &ctx.progress, &ctx.cancel)
        .await
        .map_err(|e| {
            let image = format!("{}@{}", req.role, req.version);
            match e.is_interrupted() {
                true => PromoteError::Interrupted { image },
                false => PromoteError::Lock {
                    image,
                    source: Box::new(e),
                },
            }
        })?;
    let record = gates(ctx.project, ctx.registry, req)?;
    let image = record.id();
    let current = ctx.registry.channels()?.get(req.channel, req.role);
    let mut outcome = PromoteOutcome {
        role: req.role.to_owned(),
        version: req.version.to_string(),
        channel: req.channel.to_owned(),
        from: current.map(|v| v.to_string()),
        changed: false,
        forced: req.force,
        smoke: None,
    };
    if current != Some(req.version) {
        let report = smoke(ctx, &record).await?;
        if !report.passed() {
            let names: Vec<String> = report
                .failures()
                .iter()
                .map(|c| format!("`{}` ({})", c.name, c.detail))
                .collect();
            return Err(PromoteError::SmokeFailed {
                image,
                names: names.join("; "),
            });
        }
        outcome.smoke = Some(report);
        // The last moment to stop: once the channel moves, the tags follow.
        if super::cancel::is_set(&ctx.cancel) {
            return Err(PromoteError::Interrupted { image });
        }
        let why = history_reason(req);
        let change =
            ctx.registry
                .set_channel(req.role, req.channel, &req.version, req.who, &why)?;
        outcome.from = change.from.map(|v| v.to_string());
        outcome.changed = change.changed;
        ctx.progress
            .info(format!("promoted `{image}` to channel `{}`", req.channel));
    }
    let mut touched = vec![req.version];
    touched.extend(current.filter(|c| *c != req.version));
    channel_tags::sync_everywhere(
        (ctx.target, ctx.target_name),
        ctx.project,
        ctx.registry,
        &ctx.progress,
        (req.role, req.channel),
        &touched,
    )
    .await?;
    Ok(outcome)
}

/// Every gate except the smoke test; returns the image's record.
pub fn gates(
    project: &Project,
    registry: &Registry,
    req: &PromoteRequest<'_>,
) -> Result<ImageRecord, PromoteError> {
    let record = registry.get(req.role, &req.version)?;
    let image = record.id();
    let failed: Vec<&str> = record
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    if !failed.is_empty() {
        return Err(PromoteError::ChecksFailed {
            image,
            failed: failed.len(),
            total: record.checks.len(),
            names: failed.join(", "),
        });
    }
    if let Some(revoked) = &record.revoked {
        return Err(PromoteError::Revoked {
            image,
            reason: revoked.reason.clone(),
        });
    }
    let channels = &project.config.project.channels;
    let Some(position) = channels.iter().position(|c| c == req.channel) else {
        return Err(unknown_channel(image, req.channel, channels));
    };
    if req.force && req.reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(PromoteError::ForceWithoutReason { image });
    }
    if let (Some(previous), false) = (position.checked_sub(1).map(|p| &channels[p]), req.force)
        && registry.channels()?.get(previous, req.role) != Some(req.version)
    {
        return Err(PromoteError::NotInPreviousChannel {
            image,
            channel: req.channel.to_owned(),
            previous: previous.clone(),
        });
    }
    Ok(record)
}

fn unknown_channel(image: String, channel: &str, known: &[String]) -> PromoteError {
    let known: Vec<String> = known.iter().map(|c| format!("`{c}`")).collect();
    PromoteError::UnknownChannel {
        image,
        channel: channel.to_owned(),
        known: if known.is_empty() {
            "no channels".to_owned()
        } else {
            known.join(", ")
        },
    }
}

fn history_reason(req: &PromoteRequest<'_>) -> String {
    let reason = req.reason.map(str::trim).filter(|r| !r.is_empty());
    match (req.force, reason) {
        (true, Some(r)) => format!("forced: {r}"),
        (false, Some(r)) => r.to_owned(),
        _ => "promote".to_owned(),
    }
}

/// Boots a clone of the image's template and examines it.
async fn smoke(ctx: &Context<'_>, record: &ImageRecord) -> Result<SmokeReport, PromoteError> {
    let image = record.id();
    let role = Role::resolve(ctx.project, &record.role).ok_or_else(|| PromoteError::NoRecipe {
        image: image.clone(),
        role: record.role.clone(),
    })?;
    let defaults = &ctx.project.config.defaults;
    let smoke = Smoke {
        ctx,
        cores: defaults.cores,
        memory_mib: defaults.memory_mib,
        boot_timeout: Duration::from_secs(defaults.boot_timeout),
        ssh_group: role.ssh_group.clone(),
    };
    ctx.progress
        .info(format!("smoke test of `{image}`: booting a fresh clone"));
    let template = super::artifact::template_on(record, ctx.target_name, &ctx.project.root);
    smoke
        .run(&template, role.recipe(), record.builder.as_ref())
        .await
        .map_err(|e| match e {
            SmokeError::Interrupted { .. } => PromoteError::Interrupted { image },
            e => PromoteError::Smoke {
                image,
                source: Box::new(e),
            },
        })
}
