//! Carrying out a plan, wave by wave (see [`super::plan::Plan::waves`]).
//! Within a wave every new VM is cloned, seeded, started and proven healthy
//! (cloud-init done, every check of the role passes) at the same time, at
//! most [`Deployer::jobs`] at once and, per role, at most its
//! `max_unavailable` replacements at once; a replacement is stop-first
//! (see [`super::replace`]). The next wave starts when this one is
//! healthy. VMs nobody wants any more are destroyed first, before any new
//! VM could be given an address one of them still holds.
//!
//! A failure or an interrupt stops new work; VMs being made are let finish
//! their creation (so that they can be found) and removed, replaced VMs
//! are started again, VMs that were kept keep running. The deploy then
//! ends with the first failure (exit 1) or as interrupted (exit 130).
//!
//! oxbake logs in to a new VM only if it shows the host key its seed gave
//! it; once healthy, the key is recorded in `.oxbake/known_hosts/ENV`
//! (see [`super::known_hosts`]), and a destroyed VM's line is removed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use super::known_hosts;
use super::line::VmLine;
use super::plan::Action;
use super::tag::DeployTag;
use super::{DeployError, Deployer, Prepared, Wanted};
use crate::guest::ClientKey;
use crate::pipeline::cancel;
use crate::pipeline::context::Context;
use crate::pipeline::vm::{self, VmFailure};
use crate::target::{Labels, Source, VmHandle, VmKind, VmSpec};

/// What applying one step did.
#[derive(Debug, Clone, Serialize)]
pub struct Done {
    pub action: &'static str,
    pub role: String,
    pub vm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
}

/// What the steps of one deploy share.
struct Shared<'p> {
    deploy_id: String,
    taken: Mutex<BTreeSet<String>>,
    jobs: Semaphore,
    prepared: &'p Prepared,
}

impl Deployer<'_> {
    /// Applies `prepared.plan`; see the module.
    pub async fn apply(&self, prepared: Prepared) -> Result<Vec<Done>, DeployError> {
        let jobs = self.jobs_for(&prepared);
        let shared = Shared {
            deploy_id: vm::run_id(),
            taken: Mutex::new(prepared.taken.clone()),
            jobs: Semaphore::new(jobs),
            prepared: &prepared,
        };
        let plan = &prepared.plan;
        let mut done = Vec::new();
        for action in &plan.actions {
            if let Action::Destroy { vm } = action {
                if cancel::is_set(&self.ctx.cancel) {
                    return Err(self.interrupted());
                }
                self.remove(&vm.handle).await?;
                done.push(done_step("destroy", &vm.role, vm.handle.clone(), None));
            }
        }
        for wave in 0..plan.waves.len() {
            if cancel::is_set(&self.ctx.cancel) {
                return Err(self.interrupted());
            }
            let steps: Vec<&Action> = plan
                .actions
                .iter()
                .filter(|a| {
                    matches!(
                        a,
                        Action::Create { .. } | Action::Replace { .. } | Action::Start { .. }
                    )
                })
                .filter(|a| plan.wave_of(a.role()) == Some(wave))
                .collect();
            if steps.is_empty() {
                continue;
            }
            self.ctx.progress.info(format!(
                "wave {}: {} ({} vm(s), at most {} at once)",
                wave + 1,
                plan.waves[wave].join(", "),
                steps.len(),
                jobs
            ));
            done.extend(self.wave(&shared, &steps).await?);
        }
        Ok(done)
    }

    /// `--jobs`, or as many as the target allows.
    pub fn jobs_for(&self, prepared: &Prepared) -> usize {
        let settings = self.ctx.project.config.targets.get(self.ctx.target_name);
        self.jobs
            .unwrap_or_else(|| super::jobs::default(settings, &prepared.wanted))
            .max(1)
    }

    /// Runs one wave's steps at once (within the bounds); on the first
    /// failure or an interrupt the others are stopped as the module says.
    async fn wave(&self, shared: &Shared<'_>, steps: &[&Action]) -> Result<Vec<Done>, DeployError> {
        let (stop, stopped) = watch::channel(false);
        // The steps see an interrupt and a sibling's failure alike.
        let ctx = Context {
            progress: self.ctx.progress.clone(),
            cancel: stopped,
            ..*self.ctx
        };
        let d = Deployer { ctx: &ctx, ..*self };
        let roles: BTreeMap<&str, Semaphore> = steps
            .iter()
            .map(|a| {
                let max = shared.prepared.plan.max_unavailable(a.role());
                (a.role(), Semaphore::new(max as usize))
            })
            .collect();
        let run = steps.iter().map(|action| {
            let (d, roles, stop) = (&d, &roles, &stop);
            async move {
                let _replacing = match action {
                    Action::Replace { .. } => Some(roles[action.role()].acquire().await.ok()?),
                    _ => None,
                };
                let _job = shared.jobs.acquire().await.ok()?;
                if cancel::is_set(&d.ctx.cancel) {
                    return None;
                }
                let result = d.step(shared, action).await;
                if result.is_err() {
                    let _ = stop.send(true);
                }
                Some(result)
            }
        });
        let forward = async {
            cancel::interrupted(&self.ctx.cancel).await;
            let _ = stop.send(true);
            std::future::pending::<()>().await;
        };
        let results = tokio::select! {
            results = join_all(run) => results,
            () = forward => unreachable!("forwarding never ends"),
        };
        let (mut done, mut failures) = (Vec::new(), Vec::new());
        for result in results.into_iter().flatten() {
            match result {
                Ok(step) => done.push(step),
                Err(e) => failures.push(e),
            }
        }
        if cancel::is_set(&self.ctx.cancel) {
            return Err(self.interrupted());
        }
        // The first real failure; the others were stopped because of it.
        let first = failures.iter().position(|e| !e.is_interrupted());
        match first.map(|i| failures.swap_remove(i)) {
            Some(e) => Err(e),
            None if !failures.is_empty() => Err(self.interrupted()),
            None => Ok(done),
        }
    }

    async fn step(&self, shared: &Shared<'_>, action: &Action) -> Result<Done, DeployError> {
        let (p, id, taken) = (shared.prepared, &shared.deploy_id, &shared.taken);
        let progress = &self.ctx.progress;
        match action {
            Action::Create { want } => {
                let w = find(&p.wanted, want.slot, &want.role);
                let line = VmLine::start(progress, &want.hostname, 3);
                let vm = self.launch(w, id, taken, &p.key, &line).await;
                line.finish(vm.is_ok());
                vm.map(|vm| done_step("create", &want.role, vm, None))
            }
            Action::Replace { want, old, .. } => {
                let w = find(&p.wanted, want.slot, &want.role);
                let line = VmLine::start(progress, &want.hostname, 5);
                let vm = self.replace(w, old, (id, taken, &p.key), &line).await;
                line.finish(vm.is_ok());
                vm.map(|vm| done_step("replace", &want.role, vm, Some(old.name.clone())))
            }
            Action::Start { want, vm } => {
                let line = VmLine::start(progress, &want.hostname, 1);
                let started = self.bring_back(&vm.handle, &vm.role, &p.key, &line).await;
                line.finish(started.is_ok());
                started.map(|()| done_step("start", &want.role, vm.handle.clone(), None))
            }
            Action::Keep { .. } | Action::Destroy { .. } => {
                unreachable!("a wave only creates, replaces and starts")
            }
        }
    }

    /// Destroys every VM of the environment but, unless `all`, those of
    /// roles that keep data: (destroyed, kept).
    pub async fn destroy_all(&self, all: bool) -> Result<(Vec<String>, Vec<String>), DeployError> {
        let listed = self.listed().await?;
        let keeps = self.keeps_data();
        let (mut gone, mut kept) = (Vec::new(), Vec::new());
        for vm in super::plan::Existing::of_env(&listed, self.env_name) {
            if cancel::is_set(&self.ctx.cancel) {
                return Err(self.interrupted());
            }
            if !all && keeps.contains(&vm.role) {
                kept.push(vm.name);
                continue;
            }
            self.remove(&vm.handle).await?;
            gone.push(vm.name);
        }
        Ok((gone, kept))
    }

    pub(super) async fn remove(&self, vm: &VmHandle) -> Result<(), DeployError> {
        self.ctx
            .progress
            .info(format!("destroying vm `{}`", vm.name));
        self.ctx
            .target
            .destroy(vm)
            .await
            .map_err(|source| DeployError::Target {
                vm: vm.name.clone(),
                what: "cannot destroy",
                source,
            })?;
        known_hosts::forget(&self.known_hosts_file(), &vm.name)?;
        Ok(())
    }

    /// A new VM for `w`, healthy, or an error and no VM.
    pub(super) async fn launch(
        &self,
        w: &Wanted,
        deploy_id: &str,
        taken: &Mutex<BTreeSet<String>>,
        key: &ClientKey,
        line: &VmLine,
    ) -> Result<VmHandle, DeployError> {
        line.step("clone");
        let name = {
            let mut taken = taken.lock().unwrap_or_else(|p| p.into_inner());
            let name = if taken.contains(&w.desired.hostname) {
                format!("{}-{}", w.desired.hostname, &deploy_id[..6])
            } else {
                w.desired.hostname.clone()
            };
            taken.insert(name.clone());
            name
        };
        let spec = VmSpec {
            name: name.clone(),
            source: Source::Template(w.template.clone()),
            cores: w.cores,
            memory_mib: w.memory_mib,
            disk_gib: Some(w.disk_gib),
            labels: Labels {
                env: Some(self.env_name.to_owned()),
                version: Some(w.desired.version.clone()),
                ..Labels::new(
                    DeployTag {
                        deploy_id: deploy_id.to_owned(),
                        slot: w.desired.slot,
                        seed: w.desired.seed.clone(),
                    }
                    .to_string(),
                    w.desired.role.clone(),
                    VmKind::Deployed,
                )
            },
            network: Some(w.network.clone()),
            node: w.desired.node.clone(),
        };
        let on = w
            .desired
            .node
            .as_ref()
            .map(|n| format!(" on node `{n}`"))
            .unwrap_or_default();
        self.ctx.progress.info(format!(
            "creating vm `{name}` ({}@{}){on}",
            w.desired.role, w.desired.version
        ));
        let vm = match vm::create(self.ctx, &spec).await {
            Ok(vm) => vm,
            Err(VmFailure::Target { source, .. }) => {
                return Err(DeployError::Target {
                    vm: name,
                    what: "cannot create",
                    source,
                });
            }
            Err(VmFailure::Interrupted) => return Err(self.interrupted()),
        };
        let up =
            cancel::unless_interrupted(&self.ctx.cancel, self.bring_up(&vm, w, key, line)).await;
        let result = up.unwrap_or_else(|| Err(self.interrupted()));
        if result.is_err() {
            vm::remove(self.ctx, &vm, "", "vm").await;
        }
        result.map(|()| vm)
    }

    fn interrupted(&self) -> DeployError {
        DeployError::Interrupted {
            env: self.env_name.to_owned(),
        }
    }
}

/// The plan is computed from exactly these wanted VMs.
fn find<'a>(wanted: &'a [Wanted], slot: u32, role: &str) -> &'a Wanted {
    wanted
        .iter()
        .find(|w| w.desired.slot == slot && w.desired.role == role)
        .expect("every planned slot is a wanted VM")
}

fn done_step(action: &'static str, role: &str, vm: VmHandle, replaced: Option<String>) -> Done {
    Done {
        action,
        role: role.to_owned(),
        vm: vm.name,
        replaced,
    }
}
