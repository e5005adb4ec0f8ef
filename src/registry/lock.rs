//! The advisory lock on `images/.lock` that serialises every change to the
//! registry between oxbake processes.
//!
//! Writers take it exclusively and write their pid into the file, so that a
//! process that gives up waiting can say who holds it; the pid is cleared
//! again before the lock is released. Readers may take it shared to see
//! several files as one consistent snapshot.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use fs4::{FileExt, TryLockError};

use super::RegistryError;

/// How a lock is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Readers; any number at once, no writer meanwhile.
    Shared,
    /// One writer and nobody else.
    Exclusive,
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RegistryLock {
    file: File,
    mode: LockMode,
}

impl RegistryLock {
    /// Waits up to `timeout` for the lock on `path`. `root` names the registry
    /// in the error when the wait times out.
    pub(crate) fn acquire(
        path: &Path,
        root: &Path,
        mode: LockMode,
        timeout: Duration,
    ) -> Result<Self, RegistryError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false) // the holder's pid is in there
            .open(path)
            .map_err(|e| RegistryError::io("open the lock file", path, e))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            match try_lock(&file, mode) {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if started.elapsed() < timeout => {
                    thread::sleep(pause.min(timeout.saturating_sub(started.elapsed())));
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(RegistryError::Locked {
                        root: PathBuf::from(root),
                        pid: holder_pid(&file),
                        waited: started.elapsed(),
                    });
                }
                Err(TryLockError::Error(e)) => {
                    return Err(RegistryError::io("lock", path, e));
                }
            }
        }
        let mut lock = Self { file, mode };
        if mode == LockMode::Exclusive {
            lock.write_pid(Some(std::process::id()))
                .map_err(|e| RegistryError::io("write the lock file", path, e))?;
        }
        Ok(lock)
    }

    /// How this lock is held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    fn write_pid(&mut self, pid: Option<u32>) -> std::io::Result<()> {
        write_pid(&mut self.file, pid)
    }
}

/// Replaces a lock file's content with `pid` (or nothing), so that a
/// process waiting for the lock can say whom it waits for.
pub(crate) fn write_pid(file: &mut File, pid: Option<u32>) -> std::io::Result<()> {
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    if let Some(pid) = pid {
        writeln!(file, "{pid}")?;
    }
    file.flush()
}

impl Drop for RegistryLock {
    fn drop(&mut self) {
        if self.mode == LockMode::Exclusive {
            // Only the message of a waiting process would suffer if this fails.
            let _ = self.write_pid(None);
        }
        // Closing the file releases the lock anyway; unlocking early is tidier.
        let _ = FileExt::unlock(&self.file);
    }
}

// The fs4 trait is named explicitly: std's `File` has inherent lock methods of
// the same names that return other error types.
fn try_lock(file: &File, mode: LockMode) -> Result<(), TryLockError> {
    match mode {
        LockMode::Shared => FileExt::try_lock_shared(file),
        LockMode::Exclusive => FileExt::try_lock(file),
    }
}

/// The pid an exclusive holder wrote, if there is one (shared holders write none).
pub(crate) fn holder_pid(mut file: &File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(150);

    #[test]
    fn a_second_writer_times_out_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let held = RegistryLock::acquire(&path, dir.path(), LockMode::Exclusive, SHORT).unwrap();
        let started = Instant::now();
        let err = RegistryLock::acquire(&path, dir.path(), LockMode::Exclusive, SHORT).unwrap_err();
        assert!(started.elapsed() >= SHORT);
        let pid = std::process::id();
        let expected = format!(
            "registry `{}` is locked by another oxbake process (pid {pid})",
            dir.path().display()
        );
        assert!(err.to_string().starts_with(&expected), "{err}");
        drop(held);
        let again = RegistryLock::acquire(&path, dir.path(), LockMode::Exclusive, SHORT).unwrap();
        assert_eq!(again.mode(), LockMode::Exclusive);
    }

    #[test]
    fn readers_share_and_keep_writers_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let a = RegistryLock::acquire(&path, dir.path(), LockMode::Shared, SHORT).unwrap();
        let b = RegistryLock::acquire(&path, dir.path(), LockMode::Shared, SHORT).unwrap();
        let err = RegistryLock::acquire(&path, dir.path(), LockMode::Exclusive, SHORT).unwrap_err();
        assert!(
            matches!(err, RegistryError::Locked { pid: None, .. }),
            "{err:?}"
        );
        drop((a, b));
        RegistryLock::acquire(&path, dir.path(), LockMode::Exclusive, SHORT).unwrap();
    }

    #[test]
    fn the_pid_is_cleared_on_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let held = RegistryLock::acquire(&path, dir.path(), LockMode::Exclusive, SHORT).unwrap();
        let pid = std::fs::read_to_string(&path).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        drop(held);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
