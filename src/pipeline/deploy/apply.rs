//! Carrying out a plan. Each new VM is cloned, seeded, started and proven
//! healthy (cloud-init done, every check of the role passes, the
//! deploy-only ones too) before anything else happens; a replacement is
//! healthy before the VM it replaces is destroyed (rolling). A new VM that
//! does not become healthy is removed and the deploy stops, so the old one
//! keeps serving.
//!
//! oxbake logs in to a new VM only if it shows the host key its seed gave
//! it; once healthy, the key is recorded in `.oxbake/known_hosts/ENV`
//! (see [`super::known_hosts`]), and a destroyed VM's line is removed.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use serde::Serialize;

use super::known_hosts;
use super::plan::Action;
use super::tag::DeployTag;
use super::{DeployError, Deployer, Prepared, Wanted};
use crate::guest::{ClientKey, Command, GuestSession, OutputSinks, Timing};
use crate::pipeline::cancel;
use crate::pipeline::checks::run_checks;
use crate::pipeline::vm::{self, Stage, VmFailure};
use crate::recipe::Check;
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

impl Deployer<'_> {
    /// Applies `prepared.plan`, in order. An interrupt stops before the
    /// next step; a VM being made is removed (its creation may finish
    /// first, so that it can be found), a VM being destroyed is destroyed.
    pub async fn apply(&self, prepared: Prepared) -> Result<Vec<Done>, DeployError> {
        let deploy_id = hex::encode(rand::random::<[u8; 4]>());
        let mut taken = prepared.taken.clone();
        let mut done = Vec::new();
        for action in &prepared.plan.actions {
            if cancel::is_set(&self.ctx.cancel) {
                return Err(self.interrupted());
            }
            let step = match action {
                Action::Keep { .. } => continue,
                Action::Create { want } => {
                    let Some(w) = find(&prepared.wanted, want.slot, &want.role) else {
                        continue;
                    };
                    let vm = self
                        .launch(w, &deploy_id, &mut taken, &prepared.key)
                        .await?;
                    done_step("create", &want.role, vm, None)
                }
                Action::Replace { want, old, .. } => {
                    let Some(w) = find(&prepared.wanted, want.slot, &want.role) else {
                        continue;
                    };
                    let vm = self
                        .launch(w, &deploy_id, &mut taken, &prepared.key)
                        .await?;
                    self.remove(&old.handle).await?;
                    done_step("replace", &want.role, vm, Some(old.name.clone()))
                }
                Action::Destroy { vm } => {
                    self.remove(&vm.handle).await?;
                    done_step("destroy", &vm.role, vm.handle.clone(), None)
                }
            };
            done.push(step);
        }
        Ok(done)
    }

    /// Destroys every VM of the environment.
    pub async fn destroy_all(&self) -> Result<Vec<String>, DeployError> {
        let listed = self.listed().await?;
        let mut gone = Vec::new();
        for vm in super::plan::Existing::of_env(&listed, self.env_name) {
            if cancel::is_set(&self.ctx.cancel) {
                return Err(self.interrupted());
            }
            self.remove(&vm.handle).await?;
            gone.push(vm.name);
        }
        Ok(gone)
    }

    async fn remove(&self, vm: &VmHandle) -> Result<(), DeployError> {
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

    fn known_hosts_file(&self) -> std::path::PathBuf {
        known_hosts::path(&self.ctx.project.root, self.env_name)
    }

    /// Pins `w`'s host key for the VM's declared address and, when oxbake
    /// reaches it elsewhere (local: a forwarded loopback port), that too.
    fn record_host_key(
        &self,
        vm: &VmHandle,
        w: &Wanted,
        reached: SocketAddr,
    ) -> Result<(), DeployError> {
        let mut hosts = vec![w.network.address.to_string()];
        let endpoint = match reached.port() {
            22 => reached.ip().to_string(),
            port => format!("[{}]:{port}", reached.ip()),
        };
        if !hosts.contains(&endpoint) {
            hosts.push(endpoint);
        }
        let line = w.host_key.public_line().map_err(|e| DeployError::HostKey {
            vm: vm.name.clone(),
            source: Box::new(e),
        })?;
        known_hosts::record(&self.known_hosts_file(), &vm.name, &hosts, &line)?;
        Ok(())
    }

    /// A new VM for `w`, healthy, or an error and no VM.
    async fn launch(
        &self,
        w: &Wanted,
        deploy_id: &str,
        taken: &mut BTreeSet<String>,
        key: &ClientKey,
    ) -> Result<VmHandle, DeployError> {
        let name = if taken.contains(&w.desired.hostname) {
            format!("{}-{}", w.desired.hostname, &deploy_id[..6])
        } else {
            w.desired.hostname.clone()
        };
        taken.insert(name.clone());
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
        let up = cancel::unless_interrupted(&self.ctx.cancel, self.bring_up(&vm, w, key)).await;
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

    async fn bring_up(
        &self,
        vm: &VmHandle,
        w: &Wanted,
        key: &ClientKey,
    ) -> Result<(), DeployError> {
        let target_err = |what| {
            let vm = vm.name.clone();
            move |source| DeployError::Target { vm, what, source }
        };
        let addr = vm::boot(self.ctx, vm, &w.seed, self.boot_timeout)
            .await
            .map_err(|(stage, source)| {
                let what = match stage {
                    Stage::Create | Stage::Seed => "cannot attach cloud-init data",
                    Stage::Start => "cannot start",
                    Stage::Ssh => "SSH never answered",
                };
                target_err(what)(source)
            })?;
        let guest_err = |what| {
            let vm = vm.name.clone();
            move |source| DeployError::Guest {
                vm,
                what,
                source: Box::new(source),
            }
        };
        let sinks = OutputSinks::new(self.ctx.progress.clone(), None);
        let user = &self.env.user;
        let mut guest = vm::connect(
            self.ctx,
            addr,
            user,
            key.clone(),
            &w.host_key,
            Timing::default(),
            sinks,
        )
        .await
        .map_err(guest_err("cannot log in"))?;
        self.ctx.progress.info(format!(
            "vm `{}`: logged in, waiting for cloud-init and running the checks",
            vm.name
        ));
        let result = self.health(guest.as_mut(), vm, &w.desired.role).await;
        let _ = guest.close().await;
        result?;
        self.ctx
            .target
            .remove_cloud_init(vm)
            .await
            .map_err(target_err("cannot remove the cloud-init seed"))?;
        self.record_host_key(vm, w, addr)?;
        self.ctx
            .progress
            .info(format!("vm `{}` is healthy", vm.name));
        Ok(())
    }

    /// Cloud-init finished cleanly and every check of the role passes.
    async fn health(
        &self,
        guest: &mut dyn GuestSession,
        vm: &VmHandle,
        role: &str,
    ) -> Result<(), DeployError> {
        let guest_err = |source| DeployError::Guest {
            vm: vm.name.clone(),
            what: "a check could not run",
            source: Box::new(source),
        };
        let wait = Command::new("cloud-init status --wait --long")
            .run_as("root")
            .timeout(self.boot_timeout)
            .capture();
        let out = guest.exec(&wait).await.map_err(guest_err)?;
        if !out.status.success() || !out.stdout.contains("status: done") {
            return Err(DeployError::Check {
                vm: vm.name.clone(),
                check: "cloud-init finished".into(),
                detail: out.stdout.lines().take(6).collect::<Vec<_>>().join("; "),
            });
        }
        let Some(file) = self.ctx.project.recipes.get(role) else {
            return Ok(());
        };
        let checks: Vec<&Check> = file.recipe.checks.iter().collect();
        let results = run_checks(guest, &checks, &mut |r| r.passed)
            .await
            .map_err(guest_err)?;
        if let Some(failed) = results.into_iter().find(|r| !r.passed) {
            return Err(DeployError::Check {
                vm: vm.name.clone(),
                check: failed.name,
                detail: failed.detail,
            });
        }
        Ok(())
    }
}

/// The plan is computed from exactly these wanted VMs, so this finds one.
fn find<'a>(wanted: &'a [Wanted], slot: u32, role: &str) -> Option<&'a Wanted> {
    wanted
        .iter()
        .find(|w| w.desired.slot == slot && w.desired.role == role)
}

fn done_step(action: &'static str, role: &str, vm: VmHandle, replaced: Option<String>) -> Done {
    Done {
        action,
        role: role.to_owned(),
        vm: vm.name,
        replaced,
    }
}
