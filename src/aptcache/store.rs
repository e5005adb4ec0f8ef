//! The cache on disk: `DIR/sha256/AB/ABCD…` holds the file whose SHA256 is
//! its name, nothing else (no URL, no host, no credentials). A file enters
//! only once its content was hashed and matched the index that named it.
//! Files are pruned oldest-used first to keep the folder under its bound.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::AptCacheError;

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self, AptCacheError> {
        let dir = dir.join("sha256");
        std::fs::create_dir_all(&dir).map_err(|e| AptCacheError::io(&dir, e))?;
        Ok(Self { dir })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2]).join(sha256)
    }

    /// The cached file with this SHA256 and size, marked as just used.
    pub fn get(&self, sha256: &str, size: u64) -> Option<(std::fs::File, PathBuf)> {
        let path = self.path(sha256);
        let file = std::fs::File::open(&path).ok()?;
        if file.metadata().ok()?.len() != size {
            return None;
        }
        // The mtime says when it was last used (for pruning); opened
        // read-only, so set through a second handle.
        if let Ok(w) = std::fs::OpenOptions::new().append(true).open(&path) {
            let _ = w.set_modified(SystemTime::now());
        }
        Some((file, path))
    }

    /// A file being written, kept only if it ends with `sha256`.
    pub fn writer(&self, sha256: &str) -> Option<Pending> {
        let path = self.path(sha256);
        let parent = path.parent()?;
        std::fs::create_dir_all(parent).ok()?;
        let file = tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(parent)
            .ok()?;
        Some(Pending {
            file,
            hash: Sha256::new(),
            path,
            expected: sha256.to_owned(),
        })
    }

    /// Removes the least recently used files until the cache holds at most
    /// `max_bytes`; returns the bytes removed.
    pub fn prune(&self, max_bytes: u64) -> u64 {
        let mut files: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for sub in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            for entry in std::fs::read_dir(sub.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if let Ok(meta) = entry.metadata()
                    && meta.is_file()
                {
                    let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    files.push((used, meta.len(), entry.path()));
                }
            }
        }
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        let mut removed = 0;
        for (_, len, path) in files {
            if total <= max_bytes {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                removed += len;
            }
        }
        removed
    }
}

/// A download on its way into the store.
pub struct Pending {
    file: tempfile::NamedTempFile,
    hash: Sha256,
    path: PathBuf,
    expected: String,
}

impl Pending {
    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.hash.update(chunk);
        self.file.write_all(chunk)
    }

    /// Keeps the file if its content has the expected SHA256; `false` (and
    /// nothing kept) otherwise.
    pub fn finish(self) -> bool {
        let sum = hex::encode(self.hash.finalize());
        sum == self.expected && self.file.persist(&self.path).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn keeps_only_what_matches_and_prunes_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = (b"first package".as_slice(), b"second".as_slice());
        let mut w = store.writer(&sha(a)).unwrap();
        w.write(b"not what the index said").unwrap();
        assert!(!w.finish());
        assert!(store.get(&sha(a), a.len() as u64).is_none());
        for data in [a, b] {
            let mut w = store.writer(&sha(data)).unwrap();
            w.write(data).unwrap();
            assert!(w.finish());
        }
        assert!(store.get(&sha(a), 1).is_none(), "wrong size");
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        let (f, _) = store.get(&sha(a), a.len() as u64).unwrap();
        drop(f);
        std::fs::OpenOptions::new()
            .append(true)
            .open(store.path(&sha(a)))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(store.prune(b.len() as u64), a.len() as u64);
        assert!(store.get(&sha(a), a.len() as u64).is_none());
        assert!(store.get(&sha(b), b.len() as u64).is_some());
    }
}
