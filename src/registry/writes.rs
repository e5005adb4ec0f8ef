//! The changes to the registry. Each one runs inside a single exclusive hold
//! of the registry lock (read, decide, write atomically), so concurrent
//! oxbake processes never lose each other's updates.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::atomic::{self, Overwrite};
use super::channels::{ChannelAction, ChannelChange, HistoryEntry};
use super::lock::LockMode;
use super::store::record_rel;
use super::{
    Artifact, ImageRecord, NewImage, PhaseTiming, Published, Registry, RegistryError, Revocation,
    Version,
};
use super::{fields, names, toml_file};

const RECORD_HEADER: &str = "# oxbake image record: written once by `oxbake build`; \
only `oxbake revoke`, `oxbake publish` and `oxbake prune` (a copy it \
destroyed) change it afterwards.";
/// The suffix of a reserved version's placeholder (`ROLE/VERSION.reserved`).
pub(crate) const RESERVED_SUFFIX: &str = ".reserved";
const CHANNELS_HEADER: &str = "# oxbake channels: changed by `oxbake promote` and \
`oxbake rollback`; the history is append-only.";

impl Registry {
    /// Records a successful build of `role` under a newly allocated version.
    pub fn record(&self, role: &str, image: NewImage) -> Result<ImageRecord, RegistryError> {
        self.record_with(role, |_| image)
    }

    /// Like [`Registry::record`], for builds that need the version to describe
    /// the image (a template or file name that contains it): `describe` runs
    /// under the lock, between allocating the version and writing the record.
    pub fn record_with(
        &self,
        role: &str,
        describe: impl FnOnce(&Version) -> NewImage,
    ) -> Result<ImageRecord, RegistryError> {
        names::check_role(role)?;
        let _lock = self.lock(LockMode::Exclusive)?;
        let now = (self.clock)();
        let version = self.next_version(role, now)?;
        let record = ImageRecord::new(role, version, now, describe(&version));
        self.write_new(&record)?;
        Ok(record)
    }

    /// Checks and writes a new record; the caller holds the lock.
    fn write_new(&self, record: &ImageRecord) -> Result<(), RegistryError> {
        // What is written must read back: a parent that would not parse
        // would make the whole registry unreadable.
        record.parent.to_string().parse::<super::Parent>()?;
        self.create(record)
    }

    /// Reserves the next version of `role` for a build that must name its
    /// template after it before the record can be written: the template is
    /// made outside any lock, then [`Reservation::commit`] writes the record.
    /// The version is held by a placeholder file (`VERSION.reserved`, made
    /// exclusively under the lock), so no other build, in this process or
    /// another, is given it; the placeholder goes on commit or drop. It
    /// holds the pid of its process: one left by a killed build is swept by
    /// the next writer (see `sweep.rs`); listings read `*.toml` files only.
    pub fn reserve(&self, role: &str) -> Result<Reservation<'_>, RegistryError> {
        names::check_role(role)?;
        let _lock = self.lock(LockMode::Exclusive)?;
        let now = (self.clock)();
        let version = self.next_version(role, now)?;
        let (path, label) = self.paths(&reserved_rel(role, &version));
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| RegistryError::io("create the folder of", &label, e))?;
        }
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| file.write_all(crate::liveness::stamp().as_bytes()))
            .map_err(|e| RegistryError::io("reserve", &label, e))?;
        Ok(Reservation {
            registry: self,
            role: role.to_owned(),
            version,
            created: now,
            placeholder: path,
        })
    }

    /// The next free version of `role` (neither recorded nor reserved); the
    /// caller holds the lock.
    fn next_version(&self, role: &str, now: Timestamp) -> Result<Version, RegistryError> {
        let mut taken = self.versions(role)?;
        taken.extend(self.reserved(role));
        Version::next(now, &taken)
    }

    /// The versions of `role` held by placeholders.
    fn reserved(&self, role: &str) -> Vec<Version> {
        let Ok(entries) = fs::read_dir(self.dir.join(role)) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(RESERVED_SUFFIX)?.parse().ok()
            })
            .collect()
    }

    /// Marks `role@version` revoked. Nothing else about a record can change.
    pub fn revoke(
        &self,
        role: &str,
        version: &Version,
        reason: &str,
        who: &str,
    ) -> Result<ImageRecord, RegistryError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        let mut record = self.get(role, version)?;
        if let Some(old) = &record.revoked {
            return Err(RegistryError::AlreadyRevoked {
                role: role.into(),
                version: version.to_string(),
                reason: old.reason.clone(),
            });
        }
        record.revoked = Some(Revocation {
            reason: reason.into(),
            when: fields::whole_seconds((self.clock)()),
            who: who.into(),
        });
        let (path, label) = self.paths(&record_rel(role, version));
        let text = toml_file::encode(&label, RECORD_HEADER, &record)?;
        atomic::write(&path, &label, text.as_bytes(), Overwrite::Allow)?;
        Ok(record)
    }

    /// Records that `role@version` now also lives on `copy.target` (its
    /// `when` is set to now). A
    /// record has one copy per target: an existing one is replaced only
    /// when it is `replacing` (the caller proved that template gone), else
    /// the record stays as it is and [`RegistryError::AlreadyPublished`]
    /// names where the copy is. Revoked images and the target the image was
    /// built on are refused.
    pub fn publish(
        &self,
        role: &str,
        version: &Version,
        copy: Published,
        replacing: Option<&Artifact>,
    ) -> Result<ImageRecord, RegistryError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        let mut record = self.get(role, version)?;
        let mut copy = copy;
        copy.when = fields::whole_seconds((self.clock)());
        let refuse = |why: String| RegistryError::NotPublishable {
            image: record.id(),
            target: copy.target.clone(),
            why,
        };
        if let Some(revoked) = &record.revoked {
            return Err(refuse(format!("it is revoked ({})", revoked.reason)));
        }
        if record.target == copy.target {
            return Err(refuse("it was built there".to_owned()));
        }
        let existing = record
            .published
            .iter()
            .position(|p| p.target == copy.target);
        match existing {
            Some(i) if Some(&record.published[i].artifact) == replacing => {
                record.published[i] = copy;
            }
            Some(i) => {
                return Err(RegistryError::AlreadyPublished {
                    image: record.id(),
                    target: copy.target.clone(),
                    at: record.published[i].artifact.describe(),
                });
            }
            None => record.published.push(copy),
        }
        let (path, label) = self.paths(&record_rel(role, version));
        let text = toml_file::encode(&label, RECORD_HEADER, &record)?;
        atomic::write(&path, &label, text.as_bytes(), Overwrite::Allow)?;
        Ok(record)
    }

    /// Forgets `role@version`'s copy on `target` (its template there was
    /// destroyed); the caller holds the lock ([`super::Removal::forget_copy`]).
    /// Without such a copy the record stays as it is; the record is
    /// returned either way.
    pub(super) fn forget_copy(
        &self,
        role: &str,
        version: &Version,
        target: &str,
    ) -> Result<ImageRecord, RegistryError> {
        let mut record = self.get(role, version)?;
        let before = record.published.len();
        record.published.retain(|p| p.target != target);
        if record.published.len() == before {
            return Ok(record);
        }
        let (path, label) = self.paths(&record_rel(role, version));
        let text = toml_file::encode(&label, RECORD_HEADER, &record)?;
        atomic::write(&path, &label, text.as_bytes(), Overwrite::Allow)?;
        Ok(record)
    }

    /// Points `channel` of `role` at `version` (which must exist and not be
    /// revoked) and appends the change to the history. Pointing a channel at
    /// the version it already has changes nothing.
    pub fn set_channel(
        &self,
        role: &str,
        channel: &str,
        version: &Version,
        who: &str,
        why: &str,
    ) -> Result<ChannelChange, RegistryError> {
        names::check_channel(channel)?;
        let _lock = self.lock(LockMode::Exclusive)?;
        let record = self.get(role, version)?;
        if let Some(revoked) = record.revoked {
            return Err(RegistryError::Revoked {
                role: role.into(),
                version: version.to_string(),
                channel: channel.into(),
                reason: revoked.reason,
            });
        }
        if self.is_being_removed(role, version) {
            return Err(RegistryError::BeingRemoved {
                role: role.into(),
                version: version.to_string(),
                channel: channel.into(),
            });
        }
        self.change_channel(role, channel, *version, ChannelAction::Set, who, why)
    }

    /// Returns `channel` of `role` to the version it had before the current
    /// one, passing over revoked versions (see [`super::Channels::rollback_target`]).
    pub fn rollback(
        &self,
        role: &str,
        channel: &str,
        who: &str,
        why: &str,
    ) -> Result<ChannelChange, RegistryError> {
        names::check_role(role)?;
        names::check_channel(channel)?;
        let _lock = self.lock(LockMode::Exclusive)?;
        // A version whose record is missing or cannot be read is not usable:
        // rolling a channel back from one is what it is for.
        let usable: BTreeSet<Version> = self
            .versions(role)?
            .into_iter()
            .filter(|v| {
                self.read_record(role, v, super::record_text::parse_without_packages)
                    .is_ok_and(|r| !r.is_revoked())
            })
            .collect();
        let target = self
            .channels()?
            .rollback_target(role, channel, |v| usable.contains(v))
            .ok_or_else(|| RegistryError::NothingToRollBack {
                role: role.into(),
                channel: channel.into(),
            })?;
        self.change_channel(role, channel, target, ChannelAction::Rollback, who, why)
    }

    /// The read-modify-write of `channels.toml`; the caller holds the lock.
    fn change_channel(
        &self,
        role: &str,
        channel: &str,
        to: Version,
        action: ChannelAction,
        who: &str,
        why: &str,
    ) -> Result<ChannelChange, RegistryError> {
        let mut channels = self.channels()?;
        let from = channels.get(channel, role);
        let change = ChannelChange {
            role: role.into(),
            channel: channel.into(),
            from,
            to,
            changed: from != Some(to),
        };
        if !change.changed {
            return Ok(change);
        }
        channels.apply(HistoryEntry {
            when: fields::whole_seconds((self.clock)()),
            who: who.into(),
            action,
            role: role.into(),
            channel: channel.into(),
            from,
            to,
            why: why.into(),
        });
        let (path, label) = self.paths(Path::new("channels.toml"));
        let text = toml_file::encode(&label, CHANNELS_HEADER, &channels)?;
        atomic::write(&path, &label, text.as_bytes(), Overwrite::Allow)?;
        Ok(change)
    }

    /// Writes a new record; an existing one is never replaced.
    fn create(&self, record: &ImageRecord) -> Result<(), RegistryError> {
        let (path, label) = self.paths(&record_rel(&record.role, &record.version));
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| RegistryError::io("create the folder of", &label, e))?;
        }
        let text = toml_file::encode(&label, RECORD_HEADER, record)?;
        atomic::write(&path, &label, text.as_bytes(), Overwrite::Refuse).map_err(|err| match err {
            RegistryError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                RegistryError::AlreadyExists {
                    role: record.role.clone(),
                    version: record.version.to_string(),
                    path: label.clone(),
                }
            }
            other => other,
        })
    }
}

/// `ROLE/VERSION.reserved`, relative to the registry folder.
fn reserved_rel(role: &str, version: &Version) -> PathBuf {
    Path::new(role).join(format!("{version}{RESERVED_SUFFIX}"))
}

/// A version reserved by [`Registry::reserve`]; dropping it without
/// [`Reservation::commit`] frees the version again.
#[derive(Debug)]
pub struct Reservation<'r> {
    registry: &'r Registry,
    role: String,
    pub version: Version,
    created: Timestamp,
    placeholder: PathBuf,
}

impl Reservation<'_> {
    /// Writes the record of the reserved version (under the lock); the
    /// placeholder goes.
    pub fn commit(self, image: NewImage) -> Result<ImageRecord, RegistryError> {
        self.commit_timed(image, Vec::new())
    }

    /// [`Reservation::commit`], with how long each phase of the bake took.
    pub fn commit_timed(
        self,
        image: NewImage,
        timings: Vec<PhaseTiming>,
    ) -> Result<ImageRecord, RegistryError> {
        let _lock = self.registry.lock(LockMode::Exclusive)?;
        let mut record = ImageRecord::new(&self.role, self.version, self.created, image);
        record.timings = timings;
        self.registry.write_new(&record)?;
        Ok(record)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        // Best effort: a placeholder left behind only uses up its version.
        let _ = fs::remove_file(&self.placeholder);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::image;
    use super::*;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let now = || "2026-11-25T10:03:12Z".parse().unwrap();
        let registry = Registry::for_project(dir.path()).with_clock(now);
        (dir, registry)
    }

    #[test]
    fn a_reserved_version_is_handed_out_once_and_freed_on_drop() {
        let (dir, reg) = registry();
        let first = reg.reserve("ui").unwrap();
        let second = reg.reserve("ui").unwrap();
        assert_eq!(first.version.to_string(), "2026.11.25.1");
        assert_eq!(second.version.to_string(), "2026.11.25.2");
        let placeholder = dir.path().join("images/ui/2026.11.25.1.reserved");
        assert!(placeholder.exists());
        // Listings read records only.
        assert!(reg.versions("ui").unwrap().is_empty());
        drop(first);
        assert!(!placeholder.exists());
        let record = second.commit(image(&[])).unwrap();
        assert_eq!(record.version.to_string(), "2026.11.25.2");
        assert_eq!(reg.versions("ui").unwrap(), [record.version]);
        assert!(!dir.path().join("images/ui/2026.11.25.2.reserved").exists());
        // Versions count up from the newest: the next one follows it.
        assert_eq!(
            reg.record("ui", image(&[])).unwrap().version.to_string(),
            "2026.11.25.3"
        );
        // A dropped reservation frees its version for the next one.
        let third = reg.reserve("web").unwrap();
        drop(third);
        assert_eq!(
            reg.reserve("web").unwrap().version.to_string(),
            "2026.11.25.1"
        );
    }

    #[test]
    fn a_stale_placeholder_only_uses_up_its_version() {
        let (dir, reg) = registry();
        let stale = reg.reserve("ui").unwrap();
        std::mem::forget(stale);
        assert!(dir.path().join("images/ui/2026.11.25.1.reserved").exists());
        assert!(reg.list(None).unwrap().is_empty());
        let record = reg.record("ui", image(&[])).unwrap();
        assert_eq!(record.version.to_string(), "2026.11.25.2");
        assert_eq!(reg.list(None).unwrap().len(), 1);
    }

    #[test]
    fn a_placeholder_of_a_killed_build_is_swept_by_the_next_writer() {
        let (dir, reg) = registry();
        let folder = dir.path().join("images/ui");
        std::fs::create_dir_all(&folder).unwrap();
        // A build that reserved 2026.11.25.1 and was killed: its pid is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let killed = folder.join("2026.11.25.1.reserved");
        std::fs::write(&killed, dead.to_string()).unwrap();
        // One whose process still runs (this one) is kept.
        let live = folder.join("2026.11.25.2.reserved");
        std::fs::write(&live, std::process::id().to_string()).unwrap();
        let record = reg.record("ui", image(&[])).unwrap();
        assert!(!killed.exists(), "the killed build's placeholder is left");
        assert!(live.exists(), "a live build's placeholder was removed");
        // Versions count up from the newest, reserved ones included.
        assert_eq!(record.version.to_string(), "2026.11.25.3");
    }
}
