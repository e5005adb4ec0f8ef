//! `oxbake rollback ROLE --channel C`: the channel returns to the version it
//! had before its last change (revoked versions are passed over), with a
//! history entry; the `ch-` tags follow on every target the versions are on.

use super::channel_error::PromoteError;
use super::channel_tags;
use crate::progress::Progress;
use crate::project::Project;
use crate::registry::{ChannelChange, Registry};
use crate::target::Target;

/// One rollback.
#[derive(Debug, Clone)]
pub struct RollbackRequest<'a> {
    pub role: &'a str,
    pub channel: &'a str,
    pub who: &'a str,
    pub why: &'a str,
}

/// Rolls the channel back and moves the channel marks (on `target` first,
/// then wherever else the versions are).
pub async fn rollback(
    project: &Project,
    registry: &Registry,
    (target, target_name): (&dyn Target, &str),
    req: &RollbackRequest<'_>,
    progress: &Progress,
) -> Result<ChannelChange, PromoteError> {
    let channels = &project.config.project.channels;
    if !channels.iter().any(|c| c == req.channel) {
        let known: Vec<String> = channels.iter().map(|c| format!("`{c}`")).collect();
        return Err(PromoteError::UnknownRoleChannel {
            role: req.role.to_owned(),
            channel: req.channel.to_owned(),
            known: known.join(", "),
        });
    }
    let change = registry.rollback(req.role, req.channel, req.who, req.why)?;
    let touched: Vec<_> = change.from.into_iter().chain([change.to]).collect();
    let moved = (req.role, req.channel);
    channel_tags::sync_everywhere(
        (target, target_name),
        project,
        registry,
        progress,
        moved,
        &touched,
    )
    .await?;
    Ok(change)
}
