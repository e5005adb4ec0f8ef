//! Keeping the targets' channel marks (Proxmox `ch-CHANNEL` tags) in step
//! with `images/channels.toml`, which stays the record.

use std::path::Path;

use super::artifact::template_of;
use super::channel_error::PromoteError;
use crate::registry::{Registry, RegistryError, Version};
use crate::target::Target;

/// Sets, on the template of each of `versions` of `role`, exactly the
/// channels that now point at it. Versions without a record (pruned) are
/// passed over.
pub async fn sync(
    target: &dyn Target,
    registry: &Registry,
    root: &Path,
    role: &str,
    versions: &[Version],
) -> Result<(), PromoteError> {
    let channels = registry.channels()?;
    for version in versions {
        let record = match registry.get(role, version) {
            Ok(record) => record,
            Err(RegistryError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let names = channels.channels_of(role, version);
        target
            .set_template_channels(&template_of(&record, root), &names)
            .await
            .map_err(|e| PromoteError::Tags {
                image: record.id(),
                source: Box::new(e),
            })?;
    }
    Ok(())
}
