//! The changes to the registry. Each one runs inside a single exclusive hold
//! of the registry lock (read, decide, write atomically), so concurrent
//! oxbake processes never lose each other's updates.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::atomic::{self, Overwrite};
use super::channels::{ChannelAction, ChannelChange, HistoryEntry};
use super::lock::LockMode;
use super::store::record_rel;
use super::{ImageRecord, NewImage, Registry, RegistryError, Revocation, Version};
use super::{fields, names, toml_file};

const RECORD_HEADER: &str = "# oxbake image record: written once by `oxbake build`; \
only `oxbake revoke` changes it afterwards.";
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
        self.record_try_with(role, |v| Ok::<_, RegistryError>(describe(v)))
    }

    /// Like [`Registry::record_with`], where describing the image can fail
    /// (making the template named after the version): then nothing is
    /// written and the version stays free.
    pub fn record_try_with<E: From<RegistryError>>(
        &self,
        role: &str,
        describe: impl FnOnce(&Version) -> Result<NewImage, E>,
    ) -> Result<ImageRecord, E> {
        names::check_role(role)?;
        let _lock = self.lock(LockMode::Exclusive)?;
        let now = (self.clock)();
        let version = Version::next(now, &self.versions(role)?)?;
        let record = ImageRecord::new(role, version, now, describe(&version)?);
        // What is written must read back: a parent that would not parse
        // would make the whole registry unreadable.
        record.parent.to_string().parse::<super::Parent>()?;
        self.create(&record)?;
        Ok(record)
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
