//! One bake or promotion of a role at a time in a project: `.oxbake/locks/ROLE.lock`
//! (an advisory lock holding the holder's pid) is held while a role is
//! considered and baked. A second oxbake that wants the same role waits,
//! says which process it waits for, and then looks at the registry again:
//! the other build may have made the image it needs. An interrupt ends the
//! wait. Different roles never wait for each other here.

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::Duration;

use fs4::{FileExt, TryLockError};
use tokio::sync::watch;

use super::BuildError;
use crate::progress::Progress;

const POLL: Duration = Duration::from_millis(250);

/// A held role lock; dropping it releases the lock.
#[derive(Debug)]
pub struct RoleLock {
    file: File,
}

impl RoleLock {
    /// Takes the lock of `role` in `dir`, waiting (and saying so) while
    /// another process holds it.
    pub async fn acquire(
        dir: &Path,
        role: &str,
        progress: &Progress,
        cancel: &watch::Receiver<bool>,
    ) -> Result<Self, BuildError> {
        let path = dir.join(format!("{role}.lock"));
        let io = |source| BuildError::Lock {
            role: role.to_owned(),
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false) // the holder's pid is in there
            .open(&path)
            .map_err(io)?;
        let mut said = false;
        loop {
            // fs4's trait by name: std's `File` has inherent lock methods too.
            match FileExt::try_lock(&file) {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
            if !said {
                said = true;
                let who = crate::registry::holder_pid(&file)
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                progress.info(format!(
                    "{role}: another oxbake process{who} is building or promoting `{role}` \
                     in this project; waiting for it to finish"
                ));
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = crate::pipeline::cancel::interrupted(cancel) => {
                    return Err(BuildError::Interrupted);
                }
            }
        }
        let mut lock = Self { file };
        lock.write_pid(Some(std::process::id())).map_err(io)?;
        Ok(lock)
    }

    fn write_pid(&mut self, pid: Option<u32>) -> std::io::Result<()> {
        crate::registry::write_pid(&mut self.file, pid)
    }
}

impl Drop for RoleLock {
    fn drop(&mut self) {
        // Only a waiting process's message would miss the pid if this fails.
        let _ = self.write_pid(None);
        let _ = FileExt::unlock(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        // No one can interrupt (the sender is gone): that is no interrupt.
        let cancel = crate::pipeline::cancel::never();
        let first = RoleLock::acquire(dir.path(), "ui", &Progress::silent(), &cancel)
            .await
            .unwrap();
        let other = RoleLock::acquire(dir.path(), "base", &Progress::silent(), &cancel).await;
        assert!(other.is_ok(), "another role does not wait");
        let path = dir.path().to_path_buf();
        let rx = cancel.clone();
        let second =
            tokio::spawn(
                async move { RoleLock::acquire(&path, "ui", &Progress::silent(), &rx).await },
            );
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            !second.is_finished(),
            "the second waits while the first holds"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .expect("the second gets the lock once released")
            .unwrap();
        assert!(second.is_ok());
    }

    #[tokio::test]
    async fn an_interrupt_ends_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, cancel) = watch::channel(false);
        let _first = RoleLock::acquire(dir.path(), "ui", &Progress::silent(), &cancel)
            .await
            .unwrap();
        let path = dir.path().to_path_buf();
        let rx = cancel.clone();
        let second =
            tokio::spawn(
                async move { RoleLock::acquire(&path, "ui", &Progress::silent(), &rx).await },
            );
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send(true).unwrap();
        let err = second.await.unwrap().unwrap_err();
        assert!(err.is_interrupted(), "{err}");
    }
}
