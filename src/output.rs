//! Where reports reach the operator: stdout for results (a table or one JSON
//! document), stderr for problems. The only printing outside progress.rs.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::exit;

/// How a command's result is shown. With `--json` the result is held and
/// printed once, when the run ends ([`Output::finish`]), so a failure can
/// still be told in the one document on stdout.
#[derive(Debug, Clone, Default)]
pub struct Output {
    pub json: bool,
    held: Arc<Mutex<Held>>,
}

#[derive(Debug, Default)]
struct Held {
    /// The result document (`--json`).
    doc: Option<serde_json::Value>,
    /// Why the text result could not be written.
    unwritten: Option<std::io::Error>,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Self {
            json,
            held: Arc::default(),
        }
    }

    /// Shows a result: `json` with --json (printed by [`Output::finish`]),
    /// else `text` now.
    pub fn result(&self, text: &str, json: &serde_json::Value) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if self.json {
            held.doc = Some(json.clone());
            return;
        }
        let mut out = std::io::stdout().lock();
        if let Err(e) = write!(out, "{text}").and_then(|()| out.flush()) {
            held.unwritten.get_or_insert(e);
        }
    }

    /// Prints one line about a problem.
    pub fn problem(&self, line: &str) {
        // A closed stderr must not turn a clean exit code into a panic.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// Ends the run that exits with `code`: with --json prints the one
    /// document (the result, with an `error` member when `error` is given;
    /// `{"error": ...}` alone when there is no result). Returns the exit
    /// code: `code`, or 1 instead of 0 when the result could not be written.
    pub fn finish(&self, error: Option<serde_json::Value>, code: i32) -> i32 {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let unwritten = match (self.json, held.doc.take(), error) {
            (false, _, _) => held.unwritten.take(),
            (true, None, None) => None,
            (true, doc, error) => {
                let mut doc = doc.unwrap_or_else(|| serde_json::json!({}));
                match (doc.as_object_mut(), error) {
                    (Some(map), Some(error)) => {
                        map.insert("error".to_owned(), error);
                    }
                    (None, Some(error)) => doc = serde_json::json!({ "error": error }),
                    (_, None) => {}
                }
                let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
                let mut out = std::io::stdout().lock();
                writeln!(out, "{text}").and_then(|()| out.flush()).err()
            }
        };
        match unwritten {
            Some(e) => {
                self.problem(&format!("error: cannot write the result to stdout: {e}"));
                if code == exit::OK { exit::FAILED } else { code }
            }
            None => code,
        }
    }
}
