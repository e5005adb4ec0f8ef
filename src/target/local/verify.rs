//! A local template is checked against the sha256 its record names before
//! anything is cloned from it: the registry is input from people, and the
//! file may have been changed since the build. Hashing a multi-GB disk each
//! time is slow, so a successful check leaves a stamp in
//! `.oxbake/local/verified/` of the file's device, inode, size, mtime and
//! ctime; the next check of an unchanged file trusts the stamp. Any write to
//! the file changes its ctime (which no user can set back), so a changed
//! file is always hashed again.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::base_meta::sha256_file;
use super::state::{StateDir, TemplateRecord, read_toml};
use crate::fsutil::Atomic;
use crate::target::TargetError;

/// What identifies one version of a file's contents without reading it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

async fn stamp(path: &Path) -> Result<Stamp, TargetError> {
    let m = tokio::fs::metadata(path)
        .await
        .map_err(|e| TargetError::io(path, e))?;
    Ok(Stamp {
        path: path.to_path_buf(),
        dev: m.dev(),
        ino: m.ino(),
        size: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

fn stamp_file(state: &StateDir, sha256: &str) -> PathBuf {
    state.root().join("verified").join(format!("{sha256}.toml"))
}

/// A lower-case sha256, or the error that it is none.
fn normalized(sha256: &str) -> Result<String, TargetError> {
    let ok = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| sha256.to_ascii_lowercase())
        .ok_or_else(|| TargetError::InvalidSha256(sha256.to_string()))
}

/// Checks that `path` (resolved) holds the contents whose sha256 is
/// `expected`; an error naming the file and both hashes if not.
pub async fn file(state: &StateDir, path: &Path, expected: &str) -> Result<(), TargetError> {
    let expected = normalized(expected)?;
    let before = stamp(path).await?;
    let record = stamp_file(state, &expected);
    if read_toml::<Stamp>(&record).await.ok().as_ref() == Some(&before) {
        return Ok(());
    }
    let actual = sha256_file(path).await?;
    if actual != expected {
        return Err(TargetError::TemplateChanged {
            path: path.to_path_buf(),
            expected,
            actual,
        });
    }
    // Only a file that did not change while it was read earns a stamp.
    if stamp(path).await? == before {
        remember(&record, &before).await;
    }
    Ok(())
}

/// Records that `path` was just hashed to `sha256` (a template oxbake made).
pub async fn remember_file(state: &StateDir, path: &Path, sha256: &str) {
    if let (Ok(sha256), Ok(now)) = (normalized(sha256), stamp(path).await) {
        remember(&stamp_file(state, &sha256), &now).await;
    }
}

/// Best effort: without a stamp the next check hashes the file again.
async fn remember(record: &Path, stamp: &Stamp) {
    let Some(dir) = record.parent() else { return };
    let Ok(text) = toml::to_string(stamp) else {
        return;
    };
    if tokio::fs::create_dir_all(dir).await.is_ok() {
        let stamp = Atomic::new(".stamp-", "").mode(0o666);
        let _ = stamp
            .write_async(record.to_path_buf(), text.into_bytes())
            .await;
    }
}

/// Checks the template `path` against `expected`, and every template of
/// this target below it in its backing chain against the sha256 its
/// `templates/NAME.toml` records (a changed parent changes every child).
pub async fn template(state: &StateDir, path: &Path, expected: &str) -> Result<(), TargetError> {
    file(state, path, expected).await?;
    let templates = match tokio::fs::canonicalize(state.templates()).await {
        Ok(dir) => dir,
        Err(_) => return Ok(()),
    };
    for below in super::qcow2::backing_chain(path).await? {
        if below.parent() != Some(templates.as_path()) {
            continue;
        }
        let meta = below.with_extension("toml");
        let parent: TemplateRecord = match read_toml(&meta).await {
            Ok(parent) => parent,
            Err(TargetError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        file(state, &below, &parent.sha256).await?;
    }
    Ok(())
}
