//! A bake's phases, as a list (the progress total is its length), and
//! running one as a progress step.

use std::time::Instant;

use super::bake::Builder;
use crate::pipeline::BuildError;
use crate::progress::Event;
use crate::recipe::Recipe;

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
        let mut cancel = self.p.cancel.clone();
        let work = async {
            tokio::select! {
                r = work => r,
                _ = cancel.wait_for(|c| *c) => Err(BuildError::Interrupted),
                e = self.log.failed() => Err(self.log_err(e)),
            }
        };
        self.phase_shielded(name, work).await
    }

    /// Runs one phase to its end even if the operator interrupts meanwhile.
    pub(super) async fn phase_shielded<T>(
        &self,
        name: &str,
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
        self.p.progress.send(Event::StepFinished {
            task: self.role.clone(),
            step: name.to_owned(),
            ok: result.is_ok(),
            elapsed: started.elapsed(),
        });
        result
    }
}
