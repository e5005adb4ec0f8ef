//! What an environment runs now, as `oxbake inventory`, `status` and `ssh`
//! read it: each deployed VM with its role, version, slot, declared address
//! and node, whether it runs and where its SSH server answers; and how to
//! log in to it (the deploy user, oxbake's environment key, the pinned host
//! keys). Reading changes nothing and needs no secret.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::plan::Existing;
use super::{DeployError, Deployer, key};
use crate::guest::{ClientKey, Command, ExecOutput, HostKeyPolicy, OutputSinks, Timing};
use crate::pipeline::vm::connect_pinned;
use crate::target::VmHandle;

/// One VM of the environment.
#[derive(Debug, Clone, Serialize)]
pub struct DeployedVm {
    pub name: String,
    #[serde(skip)]
    pub handle: VmHandle,
    pub role: String,
    pub version: Option<String>,
    /// `ENV-ROLE-N`: the place the VM holds (its name until it is replaced).
    pub slot: Option<String>,
    /// The address oxbake.toml gives the slot.
    pub address: Option<Ipv4Addr>,
    pub node: Option<String>,
    pub running: bool,
    /// Where oxbake reaches its SSH server (local: a forwarded loopback
    /// port); none when stopped or not answering.
    pub ssh: Option<SocketAddr>,
    /// When the target made it (its age), if the target says.
    #[serde(skip)]
    pub created: Option<jiff::Timestamp>,
}

/// How to log in to the environment's VMs with OpenSSH.
#[derive(Debug, Clone, Serialize)]
pub struct Access {
    pub user: String,
    /// oxbake's key for the environment (`.oxbake/deploy/ENV.key`).
    pub key_file: PathBuf,
    /// The pinned host keys (`.oxbake/known_hosts/ENV`).
    pub known_hosts: PathBuf,
}

impl DeployedVm {
    /// OpenSSH's arguments that log in to it as `access` says, checking the
    /// host key pinned for its address (never trusting on first use).
    pub fn ssh_args(&self, access: &Access) -> Option<Vec<String>> {
        let (ssh, address) = (self.ssh?, self.address?);
        Some(vec![
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            format!("UserKnownHostsFile={}", access.known_hosts.display()),
            "-o".into(),
            format!("HostKeyAlias={address}"),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-i".into(),
            access.key_file.display().to_string(),
            "-p".into(),
            ssh.port().to_string(),
            format!("{}@{}", access.user, ssh.ip()),
        ])
    }
}

impl Deployer<'_> {
    pub fn access(&self) -> Access {
        Access {
            user: self.env.user.clone(),
            key_file: key::path(&self.ctx.project.root, self.env_name),
            known_hosts: self.known_hosts_file(),
        }
    }

    /// The environment's VMs, by slot. A running VM's SSH server is waited
    /// for at most `probe`.
    pub async fn deployed(&self, probe: Duration) -> Result<Vec<DeployedVm>, DeployError> {
        self.deployed_of(probe, None).await
    }

    /// As `deployed`, of one role only when `role` says (the others' SSH
    /// servers are not probed).
    pub async fn deployed_of(
        &self,
        probe: Duration,
        role: Option<&str>,
    ) -> Result<Vec<DeployedVm>, DeployError> {
        let listed = self.listed().await?;
        let mut out = Vec::new();
        let of_env = Existing::of_env(&listed, self.env_name).into_iter();
        for vm in of_env.filter(|vm| role.is_none_or(|r| vm.role == r)) {
            let slot = vm.tag.as_ref().map(|t| t.slot);
            let settings = self.env.roles.get(&vm.role).map(|s| s.get_ref());
            let address = slot
                .zip(settings)
                .and_then(|(n, s)| s.addresses.get(n.checked_sub(1)? as usize))
                .map(|a| *a.get_ref());
            let ssh = match vm.running {
                true => self.ctx.target.ssh_endpoint(&vm.handle, probe).await.ok(),
                false => None,
            };
            out.push(DeployedVm {
                slot: slot.map(|n| super::seed::vm_name(self.env_name, &vm.role, n as usize)),
                name: vm.name,
                handle: vm.handle,
                role: vm.role,
                version: vm.version,
                address,
                node: vm.node,
                running: vm.running,
                ssh,
                created: vm.created,
            });
        }
        out.sort_by(|a, b| (&a.role, &a.slot, &a.name).cmp(&(&b.role, &b.slot, &b.name)));
        Ok(out)
    }

    /// Logs in to `vm` with the host key pinned for it and proves it healthy
    /// as a deploy does: cloud-init done, every check of its role passing.
    pub async fn prove_deployed(&self, vm: &DeployedVm) -> Result<(), DeployError> {
        let (addr, pinned, key) = self.login_to(vm)?;
        self.prove(&vm.handle, addr, pinned, &vm.role, &key).await
    }

    /// Logs in to `vm` (pinned host key, the environment's key) and runs
    /// `cmd`; its lines go to the progress as they come.
    pub async fn run_on(&self, vm: &DeployedVm, cmd: &Command) -> Result<ExecOutput, DeployError> {
        let (addr, pinned, key) = self.login_to(vm)?;
        let sinks = OutputSinks::new(self.ctx.progress.clone(), None);
        let guest_err = |what: &'static str| {
            move |source| DeployError::Guest {
                vm: vm.name.clone(),
                what,
                source: Box::new(source),
            }
        };
        let user = &self.env.user;
        let mut guest = connect_pinned(self.ctx, addr, user, key, pinned, Timing::default(), sinks)
            .await
            .map_err(guest_err("cannot log in"))?;
        let out = guest
            .exec(cmd)
            .await
            .map_err(guest_err("a command could not run"));
        let _ = guest.close().await;
        out
    }

    /// Where `vm`'s SSH server answers, its pinned host key and the
    /// environment's key.
    fn login_to(
        &self,
        vm: &DeployedVm,
    ) -> Result<(SocketAddr, HostKeyPolicy, ClientKey), DeployError> {
        let Some(addr) = vm.ssh else {
            return Err(DeployError::NotReachable {
                vm: vm.name.clone(),
            });
        };
        let pinned = self.pinned(&vm.name)?;
        let file = key::path(&self.ctx.project.root, self.env_name);
        let key =
            key::load(&self.ctx.project.root, self.env_name)?.ok_or_else(|| DeployError::Io {
                path: file,
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?;
        Ok((addr, pinned, key))
    }
}
