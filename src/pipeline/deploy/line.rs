//! One progress line per VM of a wave: each slot's work is a progress task
//! (a bar of its own on a terminal, plain lines elsewhere) whose steps are
//! the stages of making it (stop the old VM, clone, boot, checks, destroy
//! the old VM).

use std::sync::Mutex;
use std::time::Instant;

use crate::progress::{Event, Progress};

pub(super) struct VmLine {
    progress: Progress,
    task: String,
    started: Instant,
    current: Mutex<Option<(String, Instant)>>,
}

impl VmLine {
    /// The line of slot `name` (`ENV-ROLE-N`), `steps` stages long.
    pub fn start(progress: &Progress, name: &str, steps: usize) -> Self {
        let task = format!("vm {name}");
        progress.send(Event::TaskStarted {
            task: task.clone(),
            steps,
        });
        Self {
            progress: progress.clone(),
            task,
            started: Instant::now(),
            current: Mutex::new(None),
        }
    }

    /// The stage before (if any) is done; `step` begins.
    pub fn step(&self, step: &str) {
        self.end_step(true);
        self.progress.send(Event::StepStarted {
            task: self.task.clone(),
            step: step.to_owned(),
        });
        *self.lock() = Some((step.to_owned(), Instant::now()));
    }

    /// The slot's work ended, well or not.
    pub fn finish(self, ok: bool) {
        self.end_step(ok);
        self.progress.send(Event::TaskFinished {
            task: self.task.clone(),
            ok,
            elapsed: self.started.elapsed(),
        });
    }

    /// The current stage ended, well or not (a failed stage before the
    /// old VM is brought back, or the bring-back that worked).
    pub fn end_step(&self, ok: bool) {
        if let Some((step, since)) = self.lock().take() {
            self.progress.send(Event::StepFinished {
                task: self.task.clone(),
                step,
                ok,
                elapsed: since.elapsed(),
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, Instant)>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}
