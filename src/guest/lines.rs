//! Turns a command's output chunks into redacted lines: each line goes to
//! the progress handle and to the build log, and the last few are kept as
//! the tail that errors quote.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};

use super::redact::Redactor;
use crate::progress::{Event, Progress, Stream};

/// Where a build log goes; lines are written as `out| …` and `err| …`.
pub type LogSink = Arc<Mutex<dyn Write + Send>>;

/// Lines kept for the tail of each stream.
const TAIL_LINES: usize = 20;
/// A line longer than this is cut and sent in pieces.
const MAX_LINE: usize = 64 * 1024;
/// A tail line longer than this is shortened.
const MAX_TAIL_LINE: usize = 512;

/// Where the lines of guest commands go.
#[derive(Clone, Default)]
pub struct OutputSinks {
    pub progress: Progress,
    pub log: Option<LogSink>,
    /// The progress task the lines belong to (a role's bake), so that
    /// concurrent tasks' lines are told apart.
    pub task: Option<String>,
}

impl OutputSinks {
    pub fn new(progress: Progress, log: Option<LogSink>) -> Self {
        Self {
            progress,
            log,
            task: None,
        }
    }

    /// These sinks, their lines marked as `task`'s.
    pub fn for_task(self, task: &str) -> Self {
        Self {
            task: Some(task.to_owned()),
            ..self
        }
    }

    fn emit(&self, stream: Stream, line: String) {
        if let Some(log) = &self.log {
            let tag = match stream {
                Stream::Stdout => "out",
                Stream::Stderr => "err",
            };
            // A poisoned lock only means another writer panicked mid-line;
            // the log is best effort and must not fail the build.
            if let Ok(mut log) = log.lock() {
                let _ = writeln!(log, "{tag}| {line}");
            }
        }
        let task = self.task.clone();
        self.progress.send(Event::GuestLine { stream, line, task });
    }
}

impl std::fmt::Debug for OutputSinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputSinks")
            .field("progress", &self.progress)
            .field("log", &self.log.is_some())
            .field("task", &self.task)
            .finish()
    }
}

/// Splits one stream of one command into lines.
pub(crate) struct LineSplitter<'a> {
    stream: Stream,
    sinks: &'a OutputSinks,
    redactor: &'a Redactor,
    pending: Vec<u8>,
    tail: VecDeque<String>,
}

impl<'a> LineSplitter<'a> {
    pub(crate) fn new(stream: Stream, sinks: &'a OutputSinks, redactor: &'a Redactor) -> Self {
        Self {
            stream,
            sinks,
            redactor,
            pending: Vec::new(),
            tail: VecDeque::with_capacity(TAIL_LINES),
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.pending.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(pos) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            self.line(start, end);
            start = end + 1;
        }
        self.pending.drain(..start);
        if self.pending.len() > MAX_LINE {
            self.cut_long_line();
        }
    }

    /// Sends what is left and returns the tail.
    pub(crate) fn finish(mut self) -> String {
        if !self.pending.is_empty() {
            self.line(0, self.pending.len());
            self.pending.clear();
        }
        let mut tail = String::new();
        for line in &self.tail {
            tail.push_str(line);
            tail.push('\n');
        }
        tail
    }

    fn cut_long_line(&mut self) {
        let wanted = self.pending.len() - self.redactor.longest();
        let cut = self.redactor.safe_cut(&self.pending, wanted);
        if cut > 0 {
            self.line(0, cut);
            self.pending.drain(..cut);
        }
    }

    fn line(&mut self, start: usize, end: usize) {
        let raw = &self.pending[start..end];
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = String::from_utf8_lossy(&self.redactor.redact_bytes(raw)).into_owned();
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(shorten(&line));
        self.sinks.emit(self.stream, line);
    }
}

fn shorten(line: &str) -> String {
    if line.len() <= MAX_TAIL_LINE {
        return line.to_owned();
    }
    let mut end = MAX_TAIL_LINE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: &[&[u8]], secrets: &[&str]) -> (Vec<String>, String) {
        let (progress, mut rx) = Progress::channel();
        let sinks = OutputSinks::new(progress, None);
        let redactor = Redactor::new(secrets);
        let mut split = LineSplitter::new(Stream::Stdout, &sinks, &redactor);
        for chunk in chunks {
            split.push(chunk);
        }
        let tail = split.finish();
        let mut lines = Vec::new();
        while let Ok(Event::GuestLine { line, .. }) = rx.try_recv() {
            lines.push(line);
        }
        (lines, tail)
    }

    #[test]
    fn joins_chunks_and_redacts_across_them() {
        let (lines, tail) = collect(&[b"a to", b"ps3cret b\nlast"], &["tops3cret"]);
        assert_eq!(lines, ["a [redacted] b", "last"]);
        assert_eq!(tail, "a [redacted] b\nlast\n");
    }

    #[test]
    fn a_task_s_lines_say_whose_they_are() {
        let (progress, mut rx) = Progress::channel();
        let sinks = OutputSinks::new(progress, None).for_task("ui");
        let redactor = Redactor::new::<&str>(&[]);
        let mut split = LineSplitter::new(Stream::Stdout, &sinks, &redactor);
        split.push(b"hello\n");
        split.finish();
        let task = Some("ui".to_owned());
        let (stream, line) = (Stream::Stdout, "hello".to_owned());
        assert_eq!(
            rx.try_recv().ok(),
            Some(Event::GuestLine { stream, line, task })
        );
    }

    #[test]
    fn keeps_only_the_last_lines_in_the_tail() {
        let text: String = (0..30).map(|i| format!("{i}\n")).collect();
        let (lines, tail) = collect(&[text.as_bytes()], &[]);
        assert_eq!(lines.len(), 30);
        assert!(tail.starts_with("10\n") && tail.ends_with("29\n"));
    }

    #[test]
    fn a_huge_line_is_cut_without_splitting_a_secret() {
        let mut text = vec![b'x'; MAX_LINE - 3];
        text.extend_from_slice(b"secret-val");
        let (lines, _) = collect(&[&text, b"ue\n"], &["secret-value"]);
        assert_eq!(lines.len(), 2);
        assert!(
            lines
                .iter()
                .all(|l| !l.contains("secret") && !l.contains("ue"))
        );
        assert!(lines[1].ends_with("[redacted]"));
    }
}
