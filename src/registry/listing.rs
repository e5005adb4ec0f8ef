//! Reading many records at once: every record of a role, and the lists
//! `oxbake ls` and `oxbake prune` work from. Parsing is the cost, so the
//! versions are read on every core, results kept in version order.

use std::fs;
use std::path::PathBuf;

use super::index::{self, FileKey, Index};
use super::{ImageRecord, ImageSummary, Registry, RegistryError, Version, record_text, store};

impl Registry {
    /// Every record of `role`, oldest first.
    pub fn records(&self, role: &str) -> Result<Vec<ImageRecord>, RegistryError> {
        self.each_version(role, |v| self.get(role, v))
    }

    /// The records of every role (or just `role`) in name order, each one's
    /// versions newest first.
    pub fn list(&self, role: Option<&str>) -> Result<Vec<ImageRecord>, RegistryError> {
        self.newest_first(role, |role| self.records(role))
    }

    /// What `oxbake ls [ROLE]` shows and `oxbake prune` plans from, in the
    /// order of [`Registry::list`]: records without their package lists.
    /// Summaries come from the index where a record's file is the one
    /// indexed; any other record is read whole and checked, so a broken one
    /// is an error at its place (see `index.rs`). The indexes of the roles
    /// read are written only when the whole listing succeeded.
    pub fn summaries(&self, role: Option<&str>) -> Result<Vec<ImageSummary>, RegistryError> {
        let mut updates = Vec::new();
        let summaries = self.newest_first(role, |role| {
            let (summaries, update) = self.read_summaries(role)?;
            updates.extend(update);
            Ok(summaries)
        })?;
        for update in updates {
            update.write();
        }
        Ok(summaries)
    }

    /// The summaries of `role`, oldest first, and the index to write if
    /// it is missing or anything changed.
    pub(super) fn read_summaries(
        &self,
        role: &str,
    ) -> Result<(Vec<ImageSummary>, Option<IndexUpdate>), RegistryError> {
        let Some(dir) = &self.index else {
            let summaries = self.each_version(role, |v| {
                let record = self.read_record(role, v, record_text::parse_without_packages)?;
                Ok(ImageSummary::from(record))
            })?;
            return Ok((summaries, None));
        };
        super::names::check_role(role)?;
        let checked = index::now();
        let indexed = Index::load(dir, role);
        let index = indexed.as_ref();
        let read = self.each_version(role, |v| {
            let (path, _) = self.paths(&store::record_rel(role, v));
            // None for a symbolic link: its target may change unseen.
            let listed = fs::symlink_metadata(&path)
                .ok()
                .and_then(|m| FileKey::of(&m));
            if let Some(key) = listed
                && let Some(summary) = index.and_then(|i| i.lookup(v, &key, self.index_slack))
            {
                return Ok((summary.clone(), Some(key), false));
            }
            let (record, opened) =
                self.read_record_keyed(role, v, record_text::parse_without_packages)?;
            let key = listed.and(opened);
            Ok((ImageSummary::from(record), key, true))
        })?;
        // Symbolic links are read every time and never indexed.
        let keyed = read.iter().filter(|(_, key, _)| key.is_some()).count();
        // A role without records keeps no index (one it had goes).
        let changed = read.iter().any(|(_, key, parsed)| *parsed && key.is_some())
            || index.map_or(keyed > 0, |i| i.len() != keyed);
        let update = changed.then(|| IndexUpdate {
            dir: dir.clone(),
            role: role.to_owned(),
            checked,
            entries: read
                .iter()
                .filter_map(|(summary, key, _)| Some(((*key)?, summary.clone())))
                .collect(),
        });
        let summaries = read.into_iter().map(|(summary, _, _)| summary).collect();
        Ok((summaries, update))
    }

    fn newest_first<T>(
        &self,
        role: Option<&str>,
        mut read: impl FnMut(&str) -> Result<Vec<T>, RegistryError>,
    ) -> Result<Vec<T>, RegistryError> {
        let roles = match role {
            Some(role) => vec![role.to_string()],
            None => self.roles()?,
        };
        let mut all = Vec::new();
        for role in &roles {
            all.extend(read(role)?.into_iter().rev());
        }
        Ok(all)
    }

    /// `read` of each version of `role`, oldest first: one chunk of versions
    /// per core.
    fn each_version<T: Send>(
        &self,
        role: &str,
        read: impl Fn(&Version) -> Result<T, RegistryError> + Sync,
    ) -> Result<Vec<T>, RegistryError> {
        let versions = self.versions(role)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = versions.len().div_ceil(cores).max(64);
        let read = &read;
        let parsed: Vec<Result<Vec<T>, RegistryError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = versions
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(read).collect()))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut all = Vec::with_capacity(versions.len());
        for part in parsed {
            all.extend(part?);
        }
        Ok(all)
    }
}

/// A role's index to write once a listing has succeeded.
pub(super) struct IndexUpdate {
    dir: PathBuf,
    role: String,
    checked: (i64, i64),
    entries: Vec<(FileKey, ImageSummary)>,
}

impl IndexUpdate {
    fn write(self) {
        if self.entries.is_empty() {
            let _ = fs::remove_file(index::file(&self.dir, &self.role));
        } else {
            index::write(&self.dir, &self.role, self.checked, &self.entries);
        }
    }
}
