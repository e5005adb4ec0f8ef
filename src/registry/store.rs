//! [`Registry`]: the `images/` folder, its paths and its read-only queries.
//! The changes live in `writes.rs`.
//!
//! Queries take no lock: every file is replaced atomically, so each one is
//! read whole. A caller that wants several files as one snapshot takes
//! [`Registry::lock`] with [`LockMode::Shared`] around its reads.

use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;

use super::index::FileKey;
use super::lock::{LockMode, RegistryLock};
use super::{Channels, ImageRecord, ImageRef, RegistryError, Sha256, Version, names, toml_file};

/// How long a change waits for another oxbake process by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// The `images/` folder of a project.
#[derive(Debug, Clone)]
pub struct Registry {
    pub(crate) dir: PathBuf,
    /// How paths are shown in messages (`images/...` for a project).
    label: PathBuf,
    pub(crate) lock_timeout: Duration,
    pub(crate) clock: fn() -> Timestamp,
    /// The folder of the summaries index (see `index.rs`); none: every
    /// listing parses every record.
    pub(crate) index: Option<PathBuf>,
    /// How long a record file must have been left alone before the index
    /// is trusted with it ([`super::index::SLACK`]; tests shorten it).
    pub(crate) index_slack: Duration,
}

impl Registry {
    /// The registry in folder `dir`; messages show paths under `dir` as given.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self {
            label: dir.clone(),
            dir,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            clock: Timestamp::now,
            index: None,
            index_slack: super::index::SLACK,
        }
    }

    /// The registry of the project in `project_dir` (its `images/` folder);
    /// messages show paths relative to the project, such as `images/ui/...`.
    /// Its summaries index is kept in `.oxbake/registry/` (see `index.rs`).
    pub fn for_project(project_dir: &Path) -> Self {
        Self {
            label: PathBuf::from("images"),
            index: Some(project_dir.join(".oxbake").join("registry")),
            ..Self::new(project_dir.join("images"))
        }
    }

    /// Keeps the summaries index in folder `dir`, or (`None`) keeps none.
    pub fn with_index(mut self, dir: Option<PathBuf>) -> Self {
        self.index = dir;
        self
    }

    /// How long changes wait for another process's lock before failing.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The clock that stamps versions, history entries and revocations.
    pub fn with_clock(mut self, clock: fn() -> Timestamp) -> Self {
        self.clock = clock;
        self
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the registry lock (creating the folder if needed). Changes take
    /// it exclusively themselves; hold a shared one for a consistent read.
    /// An exclusive holder first removes what killed writers left behind
    /// (see `sweep.rs`).
    pub fn lock(&self, mode: LockMode) -> Result<RegistryLock, RegistryError> {
        fs::create_dir_all(&self.dir).map_err(|e| RegistryError::io("create", &self.label, e))?;
        let path = self.dir.join(".lock");
        let lock = RegistryLock::acquire(&path, &self.label, mode, self.lock_timeout)?;
        if mode == LockMode::Exclusive {
            self.sweep();
        }
        Ok(lock)
    }

    /// Every role with a folder, in name order.
    pub fn roles(&self) -> Result<Vec<String>, RegistryError> {
        let mut roles: Vec<String> = self
            .entries(Path::new(""))?
            .into_iter()
            .filter(|(name, is_dir)| *is_dir && names::is_valid_name(name))
            .map(|(name, _)| name)
            .collect();
        roles.sort();
        Ok(roles)
    }

    /// The versions of `role`, oldest first (none if the role has no folder).
    pub fn versions(&self, role: &str) -> Result<Vec<Version>, RegistryError> {
        names::check_role(role)?;
        let mut versions = Vec::new();
        for (name, is_dir) in self.entries(Path::new(role))? {
            let Some(stem) = name.strip_suffix(".toml") else {
                continue;
            };
            if is_dir || name.starts_with('.') {
                continue;
            }
            let version = stem.parse().map_err(|_| RegistryError::StrayFile {
                path: self.label.join(role).join(&name),
            })?;
            versions.push(version);
        }
        versions.sort();
        Ok(versions)
    }

    /// The record of `role@version`.
    pub fn get(&self, role: &str, version: &Version) -> Result<ImageRecord, RegistryError> {
        self.read_record(role, version, ImageRecord::parse)
    }

    /// Reads, parses (with `parse`) and checks the record of `role@version`.
    pub(crate) fn read_record(
        &self,
        role: &str,
        version: &Version,
        parse: fn(&Path, &str) -> Result<ImageRecord, RegistryError>,
    ) -> Result<ImageRecord, RegistryError> {
        Ok(self.read_record_keyed(role, version, parse)?.0)
    }

    /// [`Registry::read_record`], with the identity of the file as it was
    /// opened (taken before reading, so a change while it is read shows
    /// as a different identity next time); none if it is no regular file.
    pub(crate) fn read_record_keyed(
        &self,
        role: &str,
        version: &Version,
        parse: fn(&Path, &str) -> Result<ImageRecord, RegistryError>,
    ) -> Result<(ImageRecord, Option<FileKey>), RegistryError> {
        names::check_role(role)?;
        let rel = record_rel(role, version);
        let label = self.label.join(&rel);
        let mut file = match fs::File::open(self.dir.join(&rel)) {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(RegistryError::NotFound {
                    role: role.into(),
                    version: version.to_string(),
                    path: label,
                });
            }
            other => other.map_err(|e| RegistryError::io("read", &label, e))?,
        };
        let key = file
            .metadata()
            .map_err(|e| RegistryError::io("read", &label, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| RegistryError::io("read", &label, e))?;
        let text = toml_file::text(&label, bytes)?;
        let record = parse(&label, &text)?;
        record.check_identity(&label, &text, role, version)?;
        Ok((record, FileKey::of(&key)))
    }

    /// The newest record of `role`, optionally passing over revoked ones.
    pub fn latest(
        &self,
        role: &str,
        skip_revoked: bool,
    ) -> Result<Option<ImageRecord>, RegistryError> {
        for version in self.versions(role)?.iter().rev() {
            let record = self.get(role, version)?;
            if !(skip_revoked && record.is_revoked()) {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// The newest record of `role` that is not revoked and was built from
    /// `inputs` (what `build --if-changed` looks for).
    pub fn find_by_inputs(
        &self,
        role: &str,
        inputs: &Sha256,
    ) -> Result<Option<ImageRecord>, RegistryError> {
        for version in self.versions(role)?.iter().rev() {
            // Parsing is the cost (a record lists hundreds of packages): a
            // file that does not even mention the digest is passed over.
            if !self.mentions(role, version, inputs.as_str())? {
                continue;
            }
            let record = self.get(role, version)?;
            if !record.is_revoked() && record.inputs == *inputs {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }

    /// Whether the record's file contains `hex` (any letter case).
    fn mentions(&self, role: &str, version: &Version, hex: &str) -> Result<bool, RegistryError> {
        let (path, label) = self.paths(&record_rel(role, version));
        let mut bytes = fs::read(&path).map_err(|e| RegistryError::io("read", label, e))?;
        bytes.make_ascii_lowercase();
        Ok(String::from_utf8_lossy(&bytes).contains(hex))
    }

    /// The record `reference` names: `ROLE@VERSION`, or the newest version of
    /// `ROLE` (revoked or not: what was built last).
    pub fn resolve(&self, reference: &ImageRef) -> Result<ImageRecord, RegistryError> {
        match &reference.version {
            Some(version) => self.get(&reference.role, version),
            None => self
                .latest(&reference.role, false)?
                .ok_or_else(|| RegistryError::NoVersions {
                    role: reference.role.clone(),
                    dir: self.label.join(&reference.role),
                }),
        }
    }

    /// The contents of `channels.toml` (empty if there is none yet).
    pub fn channels(&self) -> Result<Channels, RegistryError> {
        self.read_channels(Channels::parse)
    }

    /// Which version each channel points at, without the history (an empty
    /// `history`): what `oxbake show` and `oxbake prune` need, read without
    /// parsing the entries every promotion appends (see `channels_text.rs`).
    pub fn channels_without_history(&self) -> Result<Channels, RegistryError> {
        self.read_channels(super::channels_text::parse_without_history)
    }

    fn read_channels(
        &self,
        parse: fn(&Path, &str) -> Result<Channels, RegistryError>,
    ) -> Result<Channels, RegistryError> {
        let label = self.channels_label();
        match fs::read(self.dir.join("channels.toml")) {
            Ok(bytes) => parse(&label, &toml_file::text(&label, bytes)?),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Channels::default()),
            Err(e) => Err(RegistryError::io("read", label, e)),
        }
    }

    pub(crate) fn channels_label(&self) -> PathBuf {
        self.label.join("channels.toml")
    }

    /// The real path and the shown path of a file inside the registry.
    pub(crate) fn paths(&self, rel: &Path) -> (PathBuf, PathBuf) {
        (self.dir.join(rel), self.label.join(rel))
    }

    /// `(name, is_dir)` of every entry of a sub-folder; none if it is missing.
    fn entries(&self, rel: &Path) -> Result<Vec<(String, bool)>, RegistryError> {
        let (path, label) = self.paths(rel);
        let read = match fs::read_dir(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            other => other.map_err(|e| RegistryError::io("list", &label, e))?,
        };
        let mut entries = Vec::new();
        for entry in read {
            let entry = entry.map_err(|e| RegistryError::io("list", &label, e))?;
            let is_dir = entry
                .file_type()
                .map_err(|e| RegistryError::io("list", &label, e))?
                .is_dir();
            entries.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
        }
        Ok(entries)
    }
}

/// `ROLE/VERSION.toml`, relative to the registry folder.
pub(crate) fn record_rel(role: &str, version: &Version) -> PathBuf {
    Path::new(role).join(format!("{version}.toml"))
}
