//! Removing a record (retention, `oxbake prune`). The record file goes; the
//! history in `channels.toml` stays, so what a channel once ran is still
//! known.

use std::fs;

use super::atomic::sync_dir;
use super::lock::LockMode;
use super::store::record_rel;
use super::{Registry, RegistryError, Version};

impl Registry {
    /// Removes the record of `role@version`, under the lock. A record that a
    /// channel points at is refused (a promotion may have happened since the
    /// caller looked); one that is already gone is not an error.
    pub fn remove(&self, role: &str, version: &Version) -> Result<bool, RegistryError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        let channels = self.channels()?.channels_of(role, version);
        if !channels.is_empty() {
            return Err(RegistryError::InChannel {
                role: role.into(),
                version: version.to_string(),
                channels: channels.join(", "),
            });
        }
        let (path, label) = self.paths(&record_rel(role, version));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(RegistryError::io("remove", label, e)),
        }
        if let Some(dir) = path.parent() {
            sync_dir(dir).map_err(|e| RegistryError::io("sync the folder of", &label, e))?;
        }
        Ok(true)
    }
}
