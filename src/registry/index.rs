//! The summaries index: per role, `.oxbake/registry/ROLE.json` holds the
//! [`ImageSummary`] of every record of the role with the identity of the
//! file it was read from (device, inode, size, modification and change
//! times). `oxbake ls` and `oxbake prune` read summaries from it and parse
//! only records whose file is not the one indexed, instead of reading every
//! record (hundreds of package lines each) on every run.
//!
//! The records stay the truth; the index is a cache that is never trusted
//! blindly:
//! - every listing lists the role's folder and looks at each record file
//!   (one `lstat`), and takes a summary from the index only if the file is
//!   still the one indexed; a new, changed or replaced record is parsed, so
//!   its errors are reported at `path:line:column` as ever, and one whose
//!   file is gone is dropped;
//! - a file that changed less than [`SLACK`] before the index was made is
//!   parsed again anyway: a second change within the file system's timestamp
//!   granularity could leave its identity as it was (git's "racily clean"
//!   entries), and symbolic links are never indexed;
//! - the index starts with the sha256 of the rest of it; an index that does
//!   not match, does not parse, is of another format or role, is ignored
//!   and made again.
//!
//! It lives in `.oxbake/` (machine-local state, not in git) rather than in
//! `images/`: file identities mean nothing on another machine, and a file
//! in `images/` would show up in every `git status`. A reader writes it
//! after a listing that succeeded and found anything changed (atomically,
//! best effort: a project it cannot write is read as before). Readers take
//! no lock, and need none: each entry is checked against its file on every
//! read, so an index written from an older view only costs a parse.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::{Artifact, ImageSummary, Parent, Published, Revocation, Sha256, Version};

/// How long after its last change a record file is trusted to keep its
/// identity across a change: at least the coarsest file system timestamp
/// granularity (2 s on FAT, 1 s on ext3).
pub(crate) const SLACK: Duration = Duration::from_secs(2);
/// The format of the index files; any other is made again (2: summaries
/// carry the published copies).
const FORMAT: u32 = 2;

/// The identity of a record file: any write to it, and any file renamed
/// over it, changes at least one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileKey {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileKey {
    /// The identity of a regular file; none for anything else.
    pub(crate) fn of(meta: &fs::Metadata) -> Option<Self> {
        meta.file_type().is_file().then(|| Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// Whether the file last changed at least `slack` before `checked`.
    fn settled(&self, checked: i128, slack: Duration) -> bool {
        let latest = nanos(self.mtime).max(nanos(self.ctime));
        latest.saturating_add(slack.as_nanos() as i128) <= checked
    }
}

fn nanos((secs, nsec): (i64, i64)) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nsec)
}

/// Now, for [`Index::checked`]: taken before any file is looked at.
pub(crate) fn now() -> (i64, i64) {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_secs() as i64, i64::from(since.subsec_nanos()))
}

/// One role's index as read: summaries by version.
#[derive(Debug, Default)]
pub(crate) struct Index {
    checked: i128,
    entries: BTreeMap<Version, (FileKey, ImageSummary)>,
}

impl Index {
    /// The index of `role` in folder `dir`; none if it is missing, corrupt,
    /// of another format or another role's.
    pub(crate) fn load(dir: &Path, role: &str) -> Option<Self> {
        let bytes = fs::read(file(dir, role)).ok()?;
        let newline = bytes.iter().position(|b| *b == b'\n')?;
        let (digest, body) = (&bytes[..newline], &bytes[newline + 1..]);
        if digest != hex::encode(sha2::Sha256::digest(body)).as_bytes() {
            return None;
        }
        let stored: Stored = serde_json::from_slice(body).ok()?;
        if stored.format != FORMAT || stored.role != role {
            return None;
        }
        let mut entries = BTreeMap::new();
        for entry in stored.entries {
            let version = entry.version;
            let (key, summary) = entry.into_summary(role)?;
            entries.insert(version, (key, summary));
        }
        Some(Self {
            checked: nanos(stored.checked),
            entries,
        })
    }

    /// The summary of `version` if `key` (its file as it is now) is the
    /// indexed file and that file had settled when the index was made.
    pub(crate) fn lookup(
        &self,
        version: &Version,
        key: &FileKey,
        slack: Duration,
    ) -> Option<&ImageSummary> {
        let (indexed, summary) = self.entries.get(version)?;
        (indexed == key && key.settled(self.checked, slack)).then_some(summary)
    }

    /// How many versions are indexed.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Writes the index of `role` in folder `dir`: `entries` as read after
/// `checked`. Best effort: a folder that cannot be written keeps no index.
pub(crate) fn write(
    dir: &Path,
    role: &str,
    checked: (i64, i64),
    entries: &[(FileKey, ImageSummary)],
) {
    let stored = Stored {
        format: FORMAT,
        role: role.to_owned(),
        checked,
        entries: entries
            .iter()
            .map(|(key, summary)| Entry::of(*key, summary))
            .collect(),
    };
    let Ok(body) = serde_json::to_vec(&stored) else {
        return;
    };
    let digest = hex::encode(sha2::Sha256::digest(&body));
    let _ = fs::create_dir_all(dir).and_then(|()| {
        // Not synced: a file torn by a crash fails its digest and is made
        // again.
        let mut temp = tempfile::Builder::new()
            .prefix(super::sweep::TMP_PREFIX)
            .suffix(super::sweep::TMP_SUFFIX)
            .tempfile_in(dir)?;
        temp.write_all(digest.as_bytes())?;
        temp.write_all(b"\n")?;
        temp.write_all(&body)?;
        temp.persist(file(dir, role)).map_err(|e| e.error)?;
        Ok(())
    });
}

/// `DIR/ROLE.json`.
pub(crate) fn file(dir: &Path, role: &str) -> PathBuf {
    dir.join(format!("{role}.json"))
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    format: u32,
    role: String,
    /// When the files were looked at (seconds and nanoseconds since 1970).
    checked: (i64, i64),
    entries: Vec<Entry>,
}

/// An [`ImageSummary`] and its file's identity. Times are kept to the
/// nanosecond, so a summary reads back exactly as it was read.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    version: Version,
    key: FileKey,
    inputs: Sha256,
    parent: Parent,
    target: String,
    created: String,
    artifact: Artifact,
    published: Vec<Published>,
    checks: (usize, usize),
    revoked: Option<(String, String, String)>,
}

impl Entry {
    fn of(key: FileKey, s: &ImageSummary) -> Self {
        Self {
            version: s.version,
            key,
            inputs: s.inputs.clone(),
            parent: s.parent.clone(),
            target: s.target.clone(),
            created: s.created.to_string(),
            artifact: s.artifact.clone(),
            published: s.published.clone(),
            checks: s.checks_passed,
            revoked: s
                .revoked
                .as_ref()
                .map(|r| (r.reason.clone(), r.when.to_string(), r.who.clone())),
        }
    }

    fn into_summary(self, role: &str) -> Option<(FileKey, ImageSummary)> {
        let revoked = match self.revoked {
            Some((reason, when, who)) => Some(Revocation {
                reason,
                when: when.parse::<Timestamp>().ok()?,
                who,
            }),
            None => None,
        };
        let summary = ImageSummary {
            role: role.to_owned(),
            version: self.version,
            inputs: self.inputs,
            parent: self.parent,
            target: self.target,
            created: self.created.parse().ok()?,
            artifact: self.artifact,
            published: self.published,
            checks_passed: self.checks,
            revoked,
        };
        Some((self.key, summary))
    }
}

#[cfg(test)]
#[path = "index_tests.rs"]
mod tests;
