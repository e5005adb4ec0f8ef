//! The builder VM's own life: created (its creation shielded from an
//! interrupt), seeded, started, logged in to, shut down.

use std::sync::Arc;
use std::time::Duration;

use super::bake::Builder;
use crate::aptcache::{AptCache, DEFAULT_MAX_BYTES};
use crate::guest::{ClientKey, GuestSession, HostKeyPair, OutputSinks, Timing};
use crate::pipeline::hygiene::BUILDER_USER;
use crate::pipeline::log::BuildLog;
use crate::pipeline::vm::{self, Stage};
use crate::pipeline::{BuildError, artifact};
use crate::progress::Progress;
use crate::target::cloudinit::{BuilderSeed, HostKey, builder_seed};
use crate::target::{Labels, Source, Target, VmHandle, VmKind, VmSpec};

/// The host's loopback as a builder on QEMU user networking sees it.
const USER_NET_HOST: &str = "10.0.2.2";

/// Starts the package cache for one local builder (its own proxy, so its
/// figures are its own; the store is shared), or `None`: on other targets
/// (local-only for now: a Proxmox builder cannot reach this machine's
/// loopback), or when it cannot start (the bake then downloads directly).
pub(super) async fn start_apt_cache(
    target: &dyn Target,
    progress: &Progress,
    log: &BuildLog,
    role: &str,
) -> Option<AptCache> {
    if target.kind() != "local" {
        return None;
    }
    let dir = crate::target::local::base::default_cache_dir().join("apt");
    let sink = log.sink();
    let lines: crate::aptcache::LogFn = Arc::new(move |line: &str| {
        if let Ok(mut f) = sink.lock() {
            let _ = writeln!(f, "{line}");
        }
    });
    // A repository the guest reaches on this machine's loopback (10.0.2.2)
    // is fetched by the proxy from the loopback itself.
    let alias = Some((USER_NET_HOST, "127.0.0.1"));
    match AptCache::start_with(&dir, DEFAULT_MAX_BYTES, lines, alias).await {
        Ok(cache) => Some(cache),
        Err(e) => {
            progress.warn(format!(
                "{role}: no package cache, apt downloads directly: {e}"
            ));
            None
        }
    }
}

const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(180);

impl Builder<'_, '_> {
    /// Creates the builder VM. An interrupt does not cut the creation off
    /// at once: a clone dropped half-way would leave a VM that carries no
    /// labels yet, so the clean-up could not find it. It gets
    /// [`vm::CREATE_GRACE`] to finish (and be labelled), then the build ends.
    pub(super) async fn create_vm_or_finish(
        &self,
        client: &ClientKey,
        host: &HostKeyPair,
    ) -> Result<VmHandle, BuildError> {
        let announce = || {
            self.p.progress.info(format!(
                "{}: interrupted: letting the builder VM's creation finish (up to {}s) \
                 so that it can be removed",
                self.role,
                vm::CREATE_GRACE.as_secs()
            ))
        };
        vm::finish_creating(self.p, self.create_vm(client, host), announce)
            .await
            .unwrap_or(Err(BuildError::Interrupted))
    }

    pub(super) async fn create_vm(
        &self,
        client: &ClientKey,
        host: &HostKeyPair,
    ) -> Result<VmHandle, BuildError> {
        let defaults = &self.p.project.config.defaults;
        let source = match &self.resolved.parent {
            Some(parent) => Source::Template(artifact::template_on(
                parent,
                self.p.target_name,
                &self.p.project.root,
            )),
            None => Source::Base(self.resolved.role.suite),
        };
        let spec = VmSpec {
            name: format!("build-{}-{}", self.role, self.run_id),
            source,
            cores: defaults.cores,
            memory_mib: defaults.memory_mib,
            disk_gib: Some(defaults.disk_gib),
            labels: Labels {
                run_id: self.run_id.clone(),
                role: self.role.clone(),
                kind: VmKind::Builder,
                env: None,
                version: None,
            },
            network: None,
            node: None,
        };
        let vm = self
            .p
            .target
            .create_vm(&spec)
            .await
            .map_err(|e| self.target_err("cannot create the builder VM", e))?;
        let private = host
            .private_openssh()
            .map_err(|e| self.guest_err("cannot encode the host key", e))?;
        let public = host
            .public_line()
            .map_err(|e| self.guest_err("cannot encode the host key", e))?;
        let authorized = client
            .public_line()
            .map_err(|e| self.guest_err("cannot encode the SSH key", e))?;
        let apt_proxy = self.apt.as_ref().map(|c| c.url_for(USER_NET_HOST));
        let seed = builder_seed(&BuilderSeed {
            instance_id: &format!("oxbake-{}", self.run_id),
            hostname: &spec.name,
            user: BUILDER_USER,
            authorized_key: &authorized,
            host_key: HostKey {
                private_openssh: &private,
                public_openssh: &public,
            },
            mac: None,
            group: self.resolved.role.ssh_group.as_deref(),
            apt_proxy: apt_proxy.as_deref(),
        });
        vm::seed_and_start(self.p, &vm, &seed)
            .await
            .map_err(|(stage, e)| match stage {
                Stage::Start => self.target_err("cannot start the builder VM", e),
                _ => self.target_err("cannot attach cloud-init data", e),
            })?;
        Ok(vm)
    }

    pub(super) async fn connect(
        &self,
        vm: &VmHandle,
        client: &ClientKey,
        host: &HostKeyPair,
    ) -> Result<Box<dyn GuestSession>, BuildError> {
        let boot = Duration::from_secs(self.p.project.config.defaults.boot_timeout);
        let addr = vm::ssh_endpoint(self.p, vm, boot)
            .await
            .map_err(|(_, e)| self.target_err("the builder VM's SSH never answered", e))?;
        if let Ok(mut slot) = self.endpoint.lock() {
            *slot = Some(addr);
        }
        // A guest busy installing packages under emulation may answer
        // keepalives slowly: allow it a minute before calling it dead.
        let timing = Timing {
            connect_deadline: boot,
            keepalive_interval: Duration::from_secs(10),
            keepalive_max: 6,
            ..Timing::default()
        };
        let sinks =
            OutputSinks::new(self.p.progress.clone(), Some(self.log.sink())).for_task(&self.role);
        vm::connect(
            self.p,
            addr,
            BUILDER_USER,
            client.clone(),
            host,
            timing,
            sinks,
        )
        .await
        .map_err(|e| self.guest_err("cannot log in to the builder VM", e))
    }

    /// Says what apt fetched from outside and what from the package cache.
    pub(super) fn report_apt_cache(&self) {
        if let Some(cache) = &self.apt {
            let line = cache.stats().to_string();
            self.log.line(&line);
            self.p.progress.info(format!("{}: {line}", self.role));
        }
    }

    pub(super) async fn shutdown(&self, vm: &VmHandle) -> Result<(), BuildError> {
        let forced = self
            .p
            .target
            .shutdown(vm, SHUTDOWN_TIMEOUT)
            .await
            .map_err(|e| self.target_err("cannot shut the builder VM down", e))?;
        if forced {
            self.p.progress.warn(format!(
                "{}: the builder VM did not power off in {}s and was stopped",
                self.role,
                SHUTDOWN_TIMEOUT.as_secs()
            ));
        }
        Ok(())
    }
}
