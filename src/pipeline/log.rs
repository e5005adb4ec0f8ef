//! The build log: every line a guest command printed (already redacted),
//! and a header for each step, in `.oxbake/logs/ROLE-RUN.log`.
//!
//! The log is the record of how a template was made, so it is not written
//! on a best-effort basis: the first write that fails (a full disk, an I/O
//! error) is kept, later writes are refused, and the build watches for it
//! ([`BuildLog::failed`]) and stops with an error that names the log. A
//! template whose log is incomplete could not be audited; the log is
//! synced before the template is made ([`BuildLog::sync`]).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::guest::LogSink;

pub struct BuildLog {
    pub path: PathBuf,
    file: Arc<Mutex<Checked>>,
    failed: watch::Receiver<Option<Failure>>,
}

/// The first write error, kept in a form that can be handed out again.
#[derive(Debug, Clone)]
struct Failure {
    kind: io::ErrorKind,
    os: Option<i32>,
    text: String,
}

impl Failure {
    fn error(&self) -> io::Error {
        match self.os {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(self.kind, self.text.clone()),
        }
    }
}

/// The log file; remembers its first failure and refuses writes after it
/// (a log with a hole in the middle would look complete).
struct Checked {
    file: File,
    failed: watch::Sender<Option<Failure>>,
}

impl Checked {
    fn check<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &result {
            let first = Failure {
                kind: e.kind(),
                os: e.raw_os_error(),
                text: e.to_string(),
            };
            self.failed.send_if_modified(|slot| {
                let unset = slot.is_none();
                if unset {
                    *slot = Some(first);
                }
                unset
            });
        }
        result
    }

    fn refused(&self) -> Option<io::Error> {
        self.failed.borrow().as_ref().map(Failure::error)
    }
}

impl Write for Checked {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.refused() {
            return Err(e);
        }
        let result = self.file.write(buf);
        self.check(result)
    }

    fn flush(&mut self) -> io::Result<()> {
        let result = self.file.flush();
        self.check(result)
    }
}

impl BuildLog {
    pub fn create(dir: &Path, role: &str, run_id: &str) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{role}-{run_id}.log"));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)?;
        let (tx, failed) = watch::channel(None);
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(Checked { file, failed: tx })),
            failed,
        })
    }

    pub fn sink(&self) -> LogSink {
        self.file.clone()
    }

    /// Writes a step's header; a failure is kept like any other.
    pub fn section(&self, title: &str) {
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "==> {title}");
        }
    }

    /// The first write error so far.
    pub fn failure(&self) -> Option<io::Error> {
        self.failed.borrow().as_ref().map(Failure::error)
    }

    /// Resolves with the first write error, once there is one.
    pub async fn failed(&self) -> io::Error {
        let mut failed = self.failed.clone();
        let result = failed.wait_for(Option::is_some).await;
        let error = result.ok().and_then(|f| f.as_ref().map(Failure::error));
        match error {
            Some(e) => e,
            // The sender lives in `self.file`, which outlives this wait.
            None => std::future::pending().await,
        }
    }

    /// Flushes the log to disk (where a full disk may show only now).
    pub fn sync(&self) -> io::Result<()> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let mut f = self
            .file
            .lock()
            .map_err(|_| io::Error::other("the build log's writer panicked"))?;
        let result = f.file.sync_all();
        f.check(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_write_error_is_kept_and_later_writes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let log = BuildLog::create(dir.path(), "web", "r1").unwrap();
        log.section("prepare");
        assert!(log.failure().is_none());
        log.sync().unwrap();
        // /dev/full answers every write with ENOSPC.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let (tx, failed) = watch::channel(None);
        let log = BuildLog {
            path: "/dev/full".into(),
            file: Arc::new(Mutex::new(Checked {
                file: full,
                failed: tx,
            })),
            failed,
        };
        let sink = log.sink();
        let wrote = writeln!(sink.lock().unwrap(), "out| hello");
        assert!(wrote.is_err());
        let e = log.failed().await;
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        assert!(e.to_string().contains("No space left on device"), "{e}");
        log.section("next");
        assert_eq!(log.failure().unwrap().raw_os_error(), Some(libc::ENOSPC));
        assert!(log.sync().is_err());
    }
}
