//! Keeping the targets' channel marks (Proxmox `ch-CHANNEL` tags) in step
//! with `images/channels.toml`, which stays the record. A channel's marks
//! follow it to every target its images are on: where they were built and
//! where they were published.

use std::collections::BTreeSet;
use std::path::Path;

use super::artifact::template_on;
use super::channel_error::PromoteError;
use super::open;
use crate::error_chain::chain;
use crate::progress::Progress;
use crate::project::Project;
use crate::registry::{ImageHead, ImageRecord, Registry, RegistryError, Version};
use crate::target::Target;

/// [`sync`] on the run's target, then on each other target that holds a
/// template of one of the versions (built there, or published there). Such
/// a target that cannot be opened or written gets a warning, not an error:
/// the channel has moved and the record is right; a promotion run with
/// `--target` there sets its marks again.
pub async fn sync_everywhere(
    (target, target_name): (&dyn Target, &str),
    project: &Project,
    registry: &Registry,
    progress: &Progress,
    moved: (&str, &str),
    versions: &[Version],
) -> Result<(), PromoteError> {
    let root = &project.root;
    sync((target, target_name), registry, root, moved, versions).await?;
    let records = touched(registry, moved, versions)?;
    let elsewhere: BTreeSet<&str> = records
        .iter()
        .flat_map(|r| {
            let copies = r.published.iter().map(|p| p.target.as_str());
            copies.chain([r.target.as_str()])
        })
        .filter(|name| *name != target_name)
        .collect();
    for name in elsewhere {
        let synced = match open::open(project, Some(name), progress, false).await {
            Ok(other) => sync(
                (other.target.as_ref(), name),
                registry,
                root,
                moved,
                versions,
            )
            .await
            .map_err(|e| chain(&e)),
            Err(e) => Err(chain(&e)),
        };
        if let Err(why) = synced {
            progress.warn(format!(
                "channel `{}` of `{}`: its marks on target `{name}` were not updated ({why}); \
                 images/channels.toml is right, a promotion with `--target {name}` sets them again",
                moved.1, moved.0
            ));
        }
    }
    Ok(())
}

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
    for record in touched(registry, (role, channel), versions)? {
        if record.artifact_on(target_name).is_none() {
            continue;
        }
        let names = channels.channels_of(role, &record.version);
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

/// The records of `versions` and of every version `channel` of `role`
/// pointed at (a tag write that failed earlier may have left `ch-CHANNEL`
/// on any of them), each once; those that are gone or unreadable are left
/// out.
fn touched(
    registry: &Registry,
    (role, channel): (&str, &str),
    versions: &[Version],
) -> Result<Vec<ImageRecord>, PromoteError> {
    let channels = registry.channels()?;
    let mut versions = versions.to_vec();
    for entry in channels.history_of(role, channel) {
        versions.extend(entry.from.into_iter().chain([entry.to]));
    }
    let mut seen = BTreeSet::new();
    versions.retain(|v| seen.insert(*v));
    let mut records = Vec::new();
    for version in &versions {
        match registry.get(role, version) {
            Ok(record) => records.push(record),
            Err(RegistryError::NotFound { .. } | RegistryError::Io { .. }) => {}
            Err(e) if e.is_invalid_input() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(records)
}
