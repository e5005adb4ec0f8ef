//! Progress events. Core code never prints: it sends [`Event`]s through a
//! [`Progress`] handle, and the renderer in this module is the one place that
//! draws them on the terminal.

use std::io::Write;
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
    /// A line a guest command printed (already redacted), and the task
    /// (a role's bake) whose command it was, when several may run at once.
    GuestLine {
        stream: Stream,
        line: String,
        task: Option<String>,
    },
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

/// Draws events on stderr until every [`Progress`] handle is dropped: bars
/// and spinners on a terminal, plain lines elsewhere (CI logs, pipes).
pub fn draw(rx: mpsc::UnboundedReceiver<Event>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut screen = Screen::new();
        let mut rx = rx;
        while let Some(event) = rx.recv().await {
            screen.show(event);
        }
        screen.finish();
    })
}

/// What the renderer keeps between events.
struct Screen {
    multi: indicatif::MultiProgress,
    tasks: std::collections::HashMap<String, indicatif::ProgressBar>,
    transfers: std::collections::HashMap<String, indicatif::ProgressBar>,
    plain: bool,
}

impl Screen {
    fn new() -> Self {
        let multi =
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr());
        let plain = multi.is_hidden();
        Self {
            multi,
            tasks: Default::default(),
            transfers: Default::default(),
            plain,
        }
    }

    fn show(&mut self, event: Event) {
        match event {
            Event::TaskStarted { task, steps } => {
                let bar = self.multi.add(indicatif::ProgressBar::new(steps as u64));
                bar.set_style(task_style());
                bar.set_prefix(task.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                self.tasks.insert(task.clone(), bar);
                self.line(format!("{task}: started ({steps} steps)"));
            }
            Event::StepStarted { task, step } => {
                if let Some(bar) = self.tasks.get(&task) {
                    bar.set_message(step.clone());
                }
                if self.plain {
                    self.line(format!("{task}: {step}"));
                }
            }
            Event::StepFinished {
                task,
                step,
                ok,
                elapsed,
            } => {
                if let Some(bar) = self.tasks.get(&task) {
                    bar.inc(1);
                }
                let mark = if ok { "ok" } else { "FAILED" };
                self.line(format!("{task}: {mark} {step} ({})", seconds(elapsed)));
            }
            Event::TaskFinished { task, ok, elapsed } => {
                if let Some(bar) = self.tasks.remove(&task) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
                let how = if ok { "done" } else { "failed" };
                self.line(format!("{task}: {how} in {}", seconds(elapsed)));
            }
            Event::GuestLine { line, task, .. } => {
                // The line's own task; without one, the task there is.
                let bar = match task {
                    Some(task) => self.tasks.get(&task),
                    None => self.tasks.values().next(),
                };
                if let Some(bar) = bar {
                    let step = bar.message();
                    let step = step.split(" │ ").next().unwrap_or_default().to_owned();
                    bar.set_message(format!("{step} │ {}", shorten(&line, 60)));
                }
            }
            Event::Transfer { what, done, total } => self.transfer(what, done, total),
            Event::Info(line) => self.line(line),
            Event::Warn(line) => self.line(format!("warning: {line}")),
        }
    }

    fn transfer(&mut self, what: String, done: u64, total: Option<u64>) {
        let bar = self.transfers.entry(what.clone()).or_insert_with(|| {
            let bar = self
                .multi
                .add(indicatif::ProgressBar::new(total.unwrap_or(0)));
            bar.set_style(transfer_style());
            bar.set_prefix(what.clone());
            bar
        });
        bar.set_position(done);
        if total.is_some_and(|t| done >= t) {
            bar.finish_and_clear();
            if let Some(bar) = self.transfers.remove(&what) {
                self.multi.remove(&bar);
            }
        }
    }

    #[allow(clippy::print_stderr)]
    fn line(&self, text: String) {
        if self.plain {
            // A closed stderr (the reader went away) must not end the work.
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    fn finish(&mut self) {
        for (_, bar) in self.tasks.drain().chain(self.transfers.drain()) {
            bar.finish_and_clear();
        }
    }
}

fn task_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(
        "{spinner} {prefix:.bold} [{pos}/{len}] {elapsed:>4} {wide_msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
}

fn transfer_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template(
        "{prefix} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn shorten(line: &str, max: usize) -> String {
    let line = line.trim();
    if line.chars().count() <= max {
        line.to_owned()
    } else {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn events_reach_the_receiver_in_order() {
        let (progress, mut rx) = Progress::channel();
        progress.info("one");
        progress.warn("two");
        drop(progress);
        assert_eq!(rx.recv().await, Some(Event::Info("one".into())));
        assert_eq!(rx.recv().await, Some(Event::Warn("two".into())));
        assert_eq!(rx.recv().await, None);
        Progress::silent().info("dropped");
    }

    #[test]
    fn long_lines_are_shortened() {
        assert_eq!(shorten("  short ", 10), "short");
        assert_eq!(shorten("abcdefghijkl", 5), "abcd…");
    }
}
