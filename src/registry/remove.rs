//! Removing a record (retention, `oxbake prune`). The record file goes; the
//! history in `channels.toml` stays, so what a channel once ran is still
//! known.
//!
//! The template and the record cannot go in one atomic step, so prune
//! works in this order, all under one hold of the registry lock:
//!
//! 1. [`Registry::begin_removal`]: refuse if a channel points at the image,
//!    then write the marker `images/ROLE/VERSION.pruning`. Writing it is
//!    also the proof that `images/ROLE/` can be written: if it fails,
//!    nothing has been destroyed.
//! 2. The caller destroys the published copies, each followed by
//!    [`Removal::forget_copy`], then the template.
//! 3. [`Removal::finish`]: the record goes, then the marker.
//!    ([`Removal::abandon`] removes only the marker when the template stays.)
//!
//! So whatever fails or is killed, a record whose template may be gone
//! still has its marker, which `oxbake ls` reports and the next
//! `oxbake prune` finishes; a record never loses its template silently. A
//! marker whose record is gone is stale and the next writer removes it
//! ([`super::sweep`]).

use std::fs;
use std::path::PathBuf;

use super::atomic::{self, Overwrite, sync_dir};
use super::lock::{LockMode, RegistryLock};
use super::store::record_rel;
use super::{Registry, RegistryError, Version};

/// The suffix of a removal marker, next to the record.
pub(crate) const MARKER_SUFFIX: &str = ".pruning";

/// A removal in progress: holds the registry lock until finished or
/// abandoned (or dropped, which leaves the marker).
#[derive(Debug)]
pub struct Removal<'r> {
    registry: &'r Registry,
    role: String,
    version: Version,
    _lock: RegistryLock,
}

/// A record marked by a removal that did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRemoval {
    pub role: String,
    pub version: Version,
    /// The marker as shown (`images/ROLE/VERSION.pruning`).
    pub marker: PathBuf,
}

impl Registry {
    /// Removes the record of `role@version` at once (no template involved).
    /// A record that a channel points at is refused; one that is already
    /// gone is not an error.
    pub fn remove(&self, role: &str, version: &Version) -> Result<bool, RegistryError> {
        self.begin_removal(role, version)?.finish()
    }

    /// Step 1 of a removal (see the module): takes the lock, refuses an
    /// image a channel points at (a promotion may have happened since the
    /// caller looked), and writes the marker.
    pub fn begin_removal(
        &self,
        role: &str,
        version: &Version,
    ) -> Result<Removal<'_>, RegistryError> {
        let lock = self.lock(LockMode::Exclusive)?;
        // The pointers, not the history: a prune removes image after image.
        let channels = self.channels_without_history()?.channels_of(role, version);
        if !channels.is_empty() {
            return Err(RegistryError::InChannel {
                role: role.into(),
                version: version.to_string(),
                channels: channels.join(", "),
            });
        }
        let (path, label) = self.paths(&marker_rel(role, version));
        let text = format!(
            "# oxbake prune is removing {role}@{version}: its template may be gone.\n\
             # Run `oxbake prune` again to finish.\n"
        );
        atomic::write(&path, &label, text.as_bytes(), Overwrite::Allow)?;
        Ok(Removal {
            registry: self,
            role: role.into(),
            version: *version,
            _lock: lock,
        })
    }

    /// Checks, without changing anything, that the record folder of `role`
    /// can be written: the lock can be taken (shared: an exclusive holder
    /// would sweep, see `sweep.rs`, and `--dry-run` changes nothing) and a
    /// file can be made there (an unnamed one where the file system allows,
    /// removed at once).
    pub fn probe_writable(&self, role: &str) -> Result<(), RegistryError> {
        let _lock = self.lock(LockMode::Shared)?;
        let (dir, label) = self.paths(std::path::Path::new(role));
        tempfile::tempfile_in(&dir)
            .map(drop)
            .map_err(|e| RegistryError::io("write in", label, e))
    }

    /// Removes the marker of `role@version` (its template proved to be
    /// still there); a missing one is fine.
    pub fn unmark(&self, role: &str, version: &Version) -> Result<(), RegistryError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        unlink(self, &marker_rel(role, version)).map(drop)
    }

    /// Whether `role@version` carries a removal marker.
    pub fn is_being_removed(&self, role: &str, version: &Version) -> bool {
        self.dir.join(marker_rel(role, version)).exists()
    }

    /// Every record with a removal marker (a prune that did not finish),
    /// in role and version order.
    pub fn pending_removals(&self) -> Result<Vec<PendingRemoval>, RegistryError> {
        let mut out = Vec::new();
        for role in self.roles()? {
            for version in self.versions(&role)? {
                let rel = marker_rel(&role, &version);
                if self.dir.join(&rel).exists() {
                    out.push(PendingRemoval {
                        marker: self.paths(&rel).1,
                        role: role.clone(),
                        version,
                    });
                }
            }
        }
        Ok(out)
    }
}

impl Removal<'_> {
    /// Step 3: removes the record, then the marker. `false` when the record
    /// was already gone.
    pub fn finish(self) -> Result<bool, RegistryError> {
        let existed = unlink(self.registry, &record_rel(&self.role, &self.version))?;
        unlink(self.registry, &marker_rel(&self.role, &self.version))?;
        Ok(existed)
    }

    /// A published copy of the image on `target` was destroyed: the record
    /// no longer lists it (the lock is still held).
    pub fn forget_copy(&self, target: &str) -> Result<super::ImageRecord, RegistryError> {
        self.registry.forget_copy(&self.role, &self.version, target)
    }

    /// The template stays: removes the marker only.
    pub fn abandon(self) -> Result<(), RegistryError> {
        unlink(self.registry, &marker_rel(&self.role, &self.version)).map(drop)
    }

    /// The marker as shown in messages.
    pub fn marker(&self) -> PathBuf {
        self.registry
            .paths(&marker_rel(&self.role, &self.version))
            .1
    }
}

/// Removes a file of the registry (`false`: it was not there) and makes the
/// removal durable; the caller holds the lock.
fn unlink(registry: &Registry, rel: &std::path::Path) -> Result<bool, RegistryError> {
    let (path, label) = registry.paths(rel);
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

/// `ROLE/VERSION.pruning`, relative to the registry folder.
pub(crate) fn marker_rel(role: &str, version: &Version) -> PathBuf {
    std::path::Path::new(role).join(format!("{version}{MARKER_SUFFIX}"))
}
