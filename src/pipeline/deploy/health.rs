//! Bringing a deployed VM up and proving it healthy: booted, logged in to
//! with the host key it must show, cloud-init done, every check of its role
//! passing. A new VM is proven with the key its seed gave it; a VM brought
//! back after a failed replacement with the key recorded for it in
//! `.oxbake/known_hosts/ENV`.

use std::net::SocketAddr;

use super::known_hosts;
use super::line::VmLine;
use super::{DeployError, Deployer, Wanted};
use crate::guest::{ClientKey, Command, GuestSession, HostKeyPolicy, OutputSinks, Timing};
use crate::pipeline::checks::run_checks;
use crate::pipeline::vm::{self, Stage};
use crate::recipe::Check;
use crate::target::{TargetError, VmHandle};

impl Deployer<'_> {
    pub(super) fn known_hosts_file(&self) -> std::path::PathBuf {
        known_hosts::path(&self.ctx.project.root, self.env_name)
    }

    /// The host key recorded for `vm` in the environment's known hosts, as
    /// the only key a login accepts.
    pub(super) fn pinned(&self, vm: &str) -> Result<HostKeyPolicy, DeployError> {
        let known = known_hosts::key_of(&self.known_hosts_file(), vm)?
            .ok_or_else(|| DeployError::NoHostKey { vm: vm.to_owned() })?;
        HostKeyPolicy::expect_line(&known).map_err(|e| DeployError::Guest {
            vm: vm.to_owned(),
            what: "its recorded host key is unusable",
            source: Box::new(e),
        })
    }

    /// Seeds and starts the new VM `vm` for `w`, proves it healthy, takes
    /// its seed away and pins its host key.
    pub(super) async fn bring_up(
        &self,
        vm: &VmHandle,
        w: &Wanted,
        key: &ClientKey,
        line: &VmLine,
    ) -> Result<(), DeployError> {
        line.step("boot");
        let addr = vm::boot(self.ctx, vm, &w.seed, self.boot_timeout)
            .await
            .map_err(|(stage, source)| stage_error(vm, stage, source))?;
        let pinned = HostKeyPolicy::Expect(w.host_key.public_key().clone());
        line.step("checks");
        self.prove(vm, addr, pinned, &w.desired.role, key).await?;
        self.ctx
            .target
            .remove_cloud_init(vm)
            .await
            .map_err(|source| DeployError::Target {
                vm: vm.name.clone(),
                what: "cannot remove the cloud-init seed",
                source,
            })?;
        self.record_host_key(vm, w, addr)?;
        self.ctx
            .progress
            .info(format!("vm `{}` is healthy", vm.name));
        Ok(())
    }

    /// Starts the stopped VM `vm` of `role` again (first of all: whatever
    /// else fails, it runs) and proves it healthy with the host key pinned
    /// for it when it was deployed.
    pub(super) async fn bring_back(
        &self,
        vm: &VmHandle,
        role: &str,
        key: &ClientKey,
        line: &VmLine,
    ) -> Result<(), DeployError> {
        line.step(&format!("start {} again", vm.name));
        self.ctx
            .progress
            .info(format!("vm `{}`: starting it again", vm.name));
        self.ctx
            .target
            .start(vm)
            .await
            .map_err(|source| stage_error(vm, Stage::Start, source))?;
        let pinned = self.pinned(&vm.name)?;
        let addr = vm::ssh_endpoint(self.ctx, vm, self.boot_timeout)
            .await
            .map_err(|(stage, source)| stage_error(vm, stage, source))?;
        self.prove(vm, addr, pinned, role, key).await?;
        line.end_step(true);
        self.ctx
            .progress
            .info(format!("vm `{}` is running and healthy again", vm.name));
        Ok(())
    }

    /// Logs in to `vm` at `addr` and runs [`Self::health`].
    pub(super) async fn prove(
        &self,
        vm: &VmHandle,
        addr: SocketAddr,
        pinned: HostKeyPolicy,
        role: &str,
        key: &ClientKey,
    ) -> Result<(), DeployError> {
        let sinks = OutputSinks::new(self.ctx.progress.clone(), None);
        let user = &self.env.user;
        let timing = Timing::default();
        let mut guest =
            vm::connect_pinned(self.ctx, addr, user, key.clone(), pinned, timing, sinks)
                .await
                .map_err(|source| DeployError::Guest {
                    vm: vm.name.clone(),
                    what: "cannot log in",
                    source: Box::new(source),
                })?;
        self.ctx.progress.info(format!(
            "vm `{}`: logged in, waiting for cloud-init and running the checks",
            vm.name
        ));
        let result = self.health(guest.as_mut(), vm, role).await;
        let _ = guest.close().await;
        result
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

fn stage_error(vm: &VmHandle, stage: Stage, source: TargetError) -> DeployError {
    let what = match stage {
        Stage::Create | Stage::Seed => "cannot attach cloud-init data",
        Stage::Start => "cannot start",
        Stage::Ssh => "SSH never answered",
    };
    DeployError::Target {
        vm: vm.name.clone(),
        what,
        source,
    }
}
