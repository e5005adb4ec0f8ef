//! A bake's phases, as a list (the progress total is its length), running
//! one as a progress step, and how long each took (kept in the record).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::bake::Builder;
use crate::pipeline::{BuildError, cancel};
use crate::progress::Event;
use crate::recipe::Recipe;
use crate::registry::PhaseTiming;

/// One phase of a bake; each is one progress step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    CreateVm,
    Connect,
    CloudInit,
    Prepare,
    /// The recipe's step at this index.
    Step(usize),
    Checks,
    Manifest,
    Clean,
    ShutDown,
    Record,
}

impl Phase {
    /// Every phase of a bake of `recipe`, in order.
    pub(super) fn all(recipe: &Recipe) -> Vec<Phase> {
        let mut phases = vec![
            Phase::CreateVm,
            Phase::Connect,
            Phase::CloudInit,
            Phase::Prepare,
        ];
        phases.extend((0..recipe.steps.len()).map(Phase::Step));
        phases.extend([
            Phase::Checks,
            Phase::Manifest,
            Phase::Clean,
            Phase::ShutDown,
            Phase::Record,
        ]);
        phases
    }

    /// The progress step's name (a recipe step is named by its label).
    pub(super) fn name(self) -> &'static str {
        match self {
            Phase::CreateVm => "create the builder VM",
            Phase::Connect => "boot and connect over SSH",
            Phase::CloudInit => "wait for cloud-init",
            Phase::Prepare => "prepare",
            Phase::Step(_) => "step",
            Phase::Checks => "checks",
            Phase::Manifest => "package manifest",
            Phase::Clean => "clean up the image",
            Phase::ShutDown => "shut down",
            Phase::Record => "make the template and record it",
        }
    }
}

impl Builder<'_, '_> {
    /// Runs one phase as a progress step; an interrupt, or a build log
    /// that can no longer be written, ends it at once.
    pub(super) async fn phase<T>(
        &self,
        name: &str,
        work: impl Future<Output = Result<T, BuildError>>,
    ) -> Result<T, BuildError> {
        self.interruptible(name, None, work).await
    }

    /// [`Builder::phase`] for the recipe's step `number` (from 1).
    pub(super) async fn recipe_step<T>(
        &self,
        number: usize,
        label: &str,
        work: impl Future<Output = Result<T, BuildError>>,
    ) -> Result<T, BuildError> {
        let number = u32::try_from(number).ok();
        self.interruptible(label, number, work).await
    }

    async fn interruptible<T>(
        &self,
        name: &str,
        step: Option<u32>,
        work: impl Future<Output = Result<T, BuildError>>,
    ) -> Result<T, BuildError> {
        let work = async {
            tokio::select! {
                r = work => r,
                // Not when no one can interrupt (`cancel::never`).
                () = cancel::interrupted(&self.p.cancel) => Err(BuildError::Interrupted),
                e = self.log.failed() => Err(self.log_err(e)),
            }
        };
        self.timed(name, step, work).await
    }

    /// Runs one phase to its end even if the operator interrupts meanwhile.
    pub(super) async fn phase_shielded<T>(
        &self,
        name: &str,
        work: impl Future<Output = Result<T, BuildError>>,
    ) -> Result<T, BuildError> {
        self.timed(name, None, work).await
    }

    /// Runs `work` as the phase `name`: a progress step, a section of the
    /// build log that ends with its duration, and a timing for the record.
    async fn timed<T>(
        &self,
        name: &str,
        step: Option<u32>,
        work: impl Future<Output = Result<T, BuildError>>,
    ) -> Result<T, BuildError> {
        let started = Instant::now();
        self.p.progress.send(Event::StepStarted {
            task: self.role.clone(),
            step: name.to_owned(),
        });
        self.log.section(name);
        let result = match self.log.failure() {
            Some(e) => Err(self.log_err(e)),
            None => work.await,
        };
        let elapsed = started.elapsed();
        let outcome = if result.is_ok() { "done" } else { "failed" };
        self.log.line(&format!(
            "<== {name}: {outcome} after {:.3} s",
            elapsed.as_secs_f64()
        ));
        self.timings.record(name, step, elapsed);
        self.p.progress.send(Event::StepFinished {
            task: self.role.clone(),
            step: name.to_owned(),
            ok: result.is_ok(),
            elapsed,
        });
        result
    }
}

/// The duration of each phase of one bake, in the order they ran.
#[derive(Debug, Default)]
pub(super) struct Timings(Mutex<Vec<PhaseTiming>>);

impl Timings {
    pub(super) fn record(&self, phase: &str, step: Option<u32>, elapsed: Duration) {
        let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.lock().push(PhaseTiming {
            phase: phase.to_owned(),
            step,
            millis,
        });
    }

    /// Every phase so far, and `current` (the one still running, whose
    /// record is being written) with the time it has taken up to now.
    pub(super) fn with_current(&self, current: Phase, started: Instant) -> Vec<PhaseTiming> {
        let mut all = self.lock().clone();
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        all.push(PhaseTiming {
            phase: current.name().to_owned(),
            step: None,
            millis,
        });
        all
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PhaseTiming>> {
        // A poisoned lock only means a panic while pushing plain data.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_keep_their_order_and_add_the_running_phase() {
        let timings = Timings::default();
        timings.record("prepare", None, Duration::from_millis(1500));
        timings.record(
            "step 1/1: packages",
            Some(1),
            Duration::from_micros(2_000_900),
        );
        let started = Instant::now() - Duration::from_millis(40);
        let all = timings.with_current(Phase::Record, started);
        let got: Vec<(&str, Option<u32>)> =
            all.iter().map(|t| (t.phase.as_str(), t.step)).collect();
        assert_eq!(
            got,
            [
                ("prepare", None),
                ("step 1/1: packages", Some(1)),
                ("make the template and record it", None)
            ]
        );
        assert_eq!((all[0].millis, all[1].millis), (1500, 2000));
        assert!(all[2].millis >= 40, "{all:?}");
    }
}
