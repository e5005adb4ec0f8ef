//! Progress events. Core code never prints: it sends [`Event`]s through a
//! [`Progress`] handle, and the renderer in this module is the one place that
//! draws them on the terminal.

use std::time::Duration;

use tokio::sync::mpsc;

/// Which output stream of a guest command a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Something worth telling the operator about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A long piece of work (a role build, a deploy) begins.
    TaskStarted { task: String, steps: usize },
    /// One step of the current task begins.
    StepStarted { task: String, step: String },
    /// One step of the current task ended.
    StepFinished {
        task: String,
        step: String,
        ok: bool,
        elapsed: Duration,
    },
    /// The task ended.
    TaskFinished {
        task: String,
        ok: bool,
        elapsed: Duration,
    },
    /// A line a guest command printed (already redacted).
    GuestLine { stream: Stream, line: String },
    /// Bytes moved so far of a transfer (download, upload).
    Transfer {
        what: String,
        done: u64,
        total: Option<u64>,
    },
    /// A plain informational line.
    Info(String),
    /// Something the operator should notice but that does not stop the work.
    Warn(String),
}

/// The sending half that core code holds. Cloning is cheap; a silent handle
/// drops every event.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    tx: Option<mpsc::UnboundedSender<Event>>,
}

impl Progress {
    /// A handle that drops everything (tests, `--json` runs that draw nothing).
    pub fn silent() -> Self {
        Self { tx: None }
    }

    /// A handle and the receiver its events arrive on.
    pub fn channel() -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx: Some(tx) }, rx)
    }

    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            // A closed receiver only means nobody is drawing any more.
            let _ = tx.send(event);
        }
    }

    pub fn info(&self, line: impl Into<String>) {
        self.send(Event::Info(line.into()));
    }

    pub fn warn(&self, line: impl Into<String>) {
        self.send(Event::Warn(line.into()));
    }
}
