//! Keeping the targets' channel marks (Proxmox `ch-CHANNEL` tags) in step
//! with `images/channels.toml`, which stays the record.

use std::path::Path;

use super::artifact::template_on;
use super::channel_error::PromoteError;
use crate::registry::{ImageHead, Registry, RegistryError, Version};
use crate::target::Target;

/// Sets, on the template (on `target`, named `target_name`: the built one
/// or the published copy there) of each of `versions` of `role` and of every
/// version `channel` pointed at before, exactly the channels that now point
/// at it. Versions whose record is gone (pruned) or cannot be read are
/// passed over: there is no template to find (a channel is rolled back from
/// such a version; `oxbake ls` and `oxbake check` report it). So are the
/// versions that have no template on `target` (built elsewhere and not
/// published there): their marks live where they are.
pub async fn sync(
    (target, target_name): (&dyn Target, &str),
    registry: &Registry,
    root: &Path,
    (role, channel): (&str, &str),
    versions: &[Version],
) -> Result<(), PromoteError> {
    let channels = registry.channels()?;
    let current = channels.get(channel, role);
    // A tag write that failed earlier may have left `ch-CHANNEL` on any
    // version the channel pointed at: look at each of them again.
    let mut versions = versions.to_vec();
    for entry in channels.history_of(role, channel) {
        versions.extend(entry.from.into_iter().chain([entry.to]));
    }
    let mut seen = std::collections::BTreeSet::new();
    versions.retain(|v| seen.insert(*v));
    for version in &versions {
        let record = match registry.get(role, version) {
            Ok(record) => record,
            Err(RegistryError::NotFound { .. } | RegistryError::Io { .. }) => continue,
            Err(e) if e.is_invalid_input() => continue,
            Err(e) => return Err(e.into()),
        };
        if record.artifact_on(target_name).is_none() {
            continue;
        }
        let names = channels.channels_of(role, version);
        target
            .set_template_channels(&template_on(&record, target_name, root), &names)
            .await
            .map_err(|e| PromoteError::Tags {
                image: record.id(),
                role: role.to_owned(),
                channel: channel.to_owned(),
                current: current.map_or_else(|| "-".to_owned(), |v| v.to_string()),
                source: Box::new(e),
            })?;
    }
    Ok(())
}
