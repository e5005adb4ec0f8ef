//! The build log: every line a guest command printed (already redacted),
//! and a header for each step, in `.oxbake/logs/ROLE-RUN.log`.
//!
//! The log is the record of how a template was made, so it is not written
//! on a best-effort basis: the first write that fails (a full disk, an I/O
//! error) is kept, later writes are refused, and the build watches for it
//! ([`BuildLog::failed`]) and stops with an error that names the log. A
//! template whose log is incomplete could not be audited; the log is
//! synced before the template is made ([`BuildLog::sync`]).
//!
//! Every line starts with the UTC time and the time since the log was
//! created (`2026-12-04T22:41:07Z +00:12.345 out| …`), so that a log tells
//! where a bake's time went. A line gets its prefix when its first byte is
//! written, also when it arrives in several writes.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

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
/// (a log with a hole in the middle would look complete), and stamps each
/// line as it starts.
struct Checked {
    file: File,
    failed: watch::Sender<Option<Failure>>,
    started: Instant,
    /// The next byte written begins a line.
    line_start: bool,
}

/// A line's prefix: the UTC time (RFC 3339, whole seconds) and the time
/// since the log began (`+MM:SS.mmm`, minutes beyond 59 as they are).
fn stamp(now: Timestamp, elapsed: Duration) -> String {
    let millis = elapsed.as_millis();
    format!(
        "{} +{:02}:{:02}.{:03} ",
        now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        millis / 60_000,
        millis / 1000 % 60,
        millis % 1000
    )
}

/// `buf` with `prefix` before the start of each line; `line_start` says
/// whether `buf` begins one, and is left saying whether the next write does.
fn stamped(buf: &[u8], prefix: &str, line_start: &mut bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + prefix.len());
    for piece in buf.split_inclusive(|b| *b == b'\n') {
        if *line_start {
            out.extend_from_slice(prefix.as_bytes());
        }
        out.extend_from_slice(piece);
        *line_start = piece.ends_with(b"\n");
    }
    out
}

impl Checked {
    fn new(file: File, failed: watch::Sender<Option<Failure>>) -> Self {
        Self {
            file,
            failed,
            started: Instant::now(),
            line_start: true,
        }
    }

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
        if buf.is_empty() {
            return Ok(0);
        }
        let prefix = stamp(Timestamp::now(), self.started.elapsed());
        let bytes = stamped(buf, &prefix, &mut self.line_start);
        // All or nothing: a part written would leave a line without its
        // prefix or a prefix twice.
        let result = self.file.write_all(&bytes).map(|()| buf.len());
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
            file: Arc::new(Mutex::new(Checked::new(file, tx))),
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

    /// Writes one line of oxbake's own (a figure, a decision).
    pub fn line(&self, text: &str) {
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{text}");
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
            file: Arc::new(Mutex::new(Checked::new(full, tx))),
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

    #[test]
    fn the_prefix_is_utc_rfc3339_and_the_elapsed_time() {
        let now: Timestamp = "2026-12-04T22:41:07.9Z".parse().unwrap();
        assert_eq!(
            stamp(now, Duration::from_millis(12_345)),
            "2026-12-04T22:41:07Z +00:12.345 "
        );
        assert_eq!(
            stamp(now, Duration::from_millis(3_723_004)),
            "2026-12-04T22:41:07Z +62:03.004 "
        );
    }

    #[test]
    fn a_line_split_across_writes_gets_one_prefix_where_it_starts() {
        let mut start = true;
        let mut out = stamped(b"out| hel", "P ", &mut start);
        assert!(!start);
        out.extend(stamped(b"lo\nout| two\nerr| th", "Q ", &mut start));
        out.extend(stamped(b"ree\n", "R ", &mut start));
        assert!(start);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "P out| hello\nQ out| two\nQ err| three\n"
        );
    }

    #[test]
    fn every_line_of_the_file_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let log = BuildLog::create(dir.path(), "web", "r1").unwrap();
        log.section("prepare");
        let sink = log.sink();
        // `writeln!` writes the tag, the line and the newline apart.
        writeln!(sink.lock().unwrap(), "out| hello").unwrap();
        sink.lock()
            .unwrap()
            .write_all(b"err| one\nerr| tw")
            .unwrap();
        sink.lock().unwrap().write_all(b"o\n").unwrap();
        log.sync().unwrap();
        let text = std::fs::read_to_string(&log.path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let bodies: Vec<&str> = lines
            .iter()
            .map(|line| {
                let mut parts = line.splitn(3, ' ');
                let time = parts.next().unwrap();
                let elapsed = parts.next().unwrap();
                assert!(time.ends_with('Z') && time.len() == 20, "{line}");
                time.parse::<Timestamp>().unwrap();
                let (minutes, rest) = elapsed.strip_prefix('+').unwrap().split_once(':').unwrap();
                let (seconds, millis) = rest.split_once('.').unwrap();
                assert_eq!(
                    (minutes.len(), seconds.len(), millis.len()),
                    (2, 2, 3),
                    "{line}"
                );
                parts.next().unwrap()
            })
            .collect();
        assert_eq!(
            bodies,
            ["==> prepare", "out| hello", "err| one", "err| two"]
        );
    }
}
