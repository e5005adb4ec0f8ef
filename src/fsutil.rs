//! The one atomic file writer: write a temporary file in the same folder,
//! fsync it, rename it over the target, then fsync the folder so the rename
//! itself survives a crash. Readers see the old file or the new one, never a
//! part, and a crash leaves no half-written file under the real name.

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// How a file is written atomically: the temporary file's name, the new
/// file's permissions and whether an existing file is replaced.
#[derive(Debug, Clone, Copy)]
pub struct Atomic {
    prefix: &'static str,
    suffix: &'static str,
    mode: u32,
    /// `mode` whatever the umask (else the umask may narrow it).
    exact: bool,
    replace: bool,
}

/// The step of an atomic write that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Create,
    Permissions,
    Write,
    Sync,
    Rename,
    SyncFolder,
}

impl Step {
    /// What was being done, as `cannot {action} FILE` reads.
    pub fn action(self) -> &'static str {
        match self {
            Self::Create => "create a temporary file for",
            Self::Permissions => "set permissions of",
            Self::Write => "write",
            Self::Sync => "sync",
            Self::Rename => "rename a temporary file to",
            Self::SyncFolder => "sync the folder of",
        }
    }
}

/// A failed atomic write: the file, the step and the I/O error. The
/// temporary file is gone; the target is as it was (or, after a failed
/// folder sync, replaced but maybe not durably).
#[derive(Debug, thiserror::Error)]
#[error("cannot {} `{}`", .step.action(), .path.display())]
pub struct WriteError {
    pub step: Step,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl From<WriteError> for io::Error {
    fn from(e: WriteError) -> Self {
        e.source
    }
}

impl Atomic {
    /// Temporary files named `PREFIX…SUFFIX`; the new file private (0600,
    /// narrowed by the umask), replacing any old one.
    pub const fn new(prefix: &'static str, suffix: &'static str) -> Self {
        Self {
            prefix,
            suffix,
            mode: 0o600,
            exact: false,
            replace: true,
        }
    }

    /// The new file gets `mode`, narrowed by the umask as any new file.
    pub const fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self.exact = false;
        self
    }

    /// The new file gets exactly `mode`, whatever the umask.
    pub const fn exact_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self.exact = true;
        self
    }

    /// An existing file is left alone: the write fails with an
    /// `AlreadyExists` error at [`Step::Rename`].
    pub const fn no_replace(mut self) -> Self {
        self.replace = false;
        self
    }

    /// Writes `bytes` to `path`.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let at = |step| {
            move |source| WriteError {
                step,
                path: path.to_path_buf(),
                source,
            }
        };
        let mut temp = tempfile::Builder::new()
            .prefix(self.prefix)
            .suffix(self.suffix)
            .permissions(Permissions::from_mode(self.mode))
            .tempfile_in(dir)
            .map_err(at(Step::Create))?;
        if self.exact {
            fs::set_permissions(temp.path(), Permissions::from_mode(self.mode))
                .map_err(at(Step::Permissions))?;
        }
        temp.write_all(bytes).map_err(at(Step::Write))?;
        temp.as_file().sync_all().map_err(at(Step::Sync))?;
        if self.replace {
            temp.persist(path).map(drop)
        } else {
            temp.persist_noclobber(path).map(drop)
        }
        .map_err(|e| at(Step::Rename)(e.error))?;
        sync_dir(dir).map_err(at(Step::SyncFolder))
    }

    /// [`Atomic::write`] off the async runtime's threads.
    pub async fn write_async(self, path: PathBuf, bytes: Vec<u8>) -> Result<(), WriteError> {
        let shown = path.clone();
        tokio::task::spawn_blocking(move || self.write(&path, &bytes))
            .await
            .unwrap_or_else(|e| {
                Err(WriteError {
                    step: Step::Write,
                    path: shown,
                    source: io::Error::other(e),
                })
            })
    }
}

/// Makes the entries of `dir` (a rename, a removal) survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The names in `dir`, sorted.
    pub(crate) fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn modes_are_exact_or_narrowed_and_no_replace_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let exact = Atomic::new(".t-", ".tmp").exact_mode(0o644);
        exact.write(&path, b"one").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        Atomic::new(".t-", ".tmp").write(&path, b"two").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0);
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        let err = exact.no_replace().write(&path, b"three").unwrap_err();
        assert_eq!(err.step, Step::Rename);
        assert_eq!(err.source.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(names(dir.path()), ["a"]);
    }

    #[tokio::test]
    async fn writes_from_async_code() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        Atomic::new(".t-", ".tmp")
            .write_async(path.clone(), b"x".to_vec())
            .await
            .unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "x");
    }
}
