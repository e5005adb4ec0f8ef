//! One disposable, labelled VM and its SSH session, as the build, the smoke
//! test and the deploy make them: created (an interrupt lets the creation
//! finish, so that the VM carries its labels and can be found and removed),
//! seeded with NoCloud data, started, reached over SSH with the host key
//! its seed gave it pinned, and removed again.
//!
//! Each caller names the stages in its own errors; this module reports
//! which [`Stage`] failed.

use std::net::SocketAddr;
use std::time::Duration;

use super::cancel;
use super::context::Context;
use crate::guest::{
    ClientKey, GuestError, GuestSession, GuestTarget, HostKeyPair, HostKeyPolicy, OutputSinks,
    Timing,
};
use crate::target::{CloudInit, ManagedVm, TargetError, VmHandle, VmSpec};

/// How long an interrupted run lets a VM's creation finish: a creation cut
/// off half-way would leave a VM the clean-up cannot see.
pub const CREATE_GRACE: Duration = Duration::from_secs(30);

/// A new run id (labels every VM of one run; `oxbake gc` goes by it).
pub fn run_id() -> String {
    let bytes: [u8; 4] = rand::random();
    hex::encode(bytes)
}

/// Where a disposable VM's life went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Create,
    Seed,
    Start,
    Ssh,
}

/// Why a VM could not be made or reached.
#[derive(Debug)]
pub enum VmFailure {
    Target {
        stage: Stage,
        source: TargetError,
    },
    /// The operator interrupted; what the creation got to was removed.
    Interrupted,
}

/// Creates the VM `spec` describes. On an interrupt the creation gets
/// [`CREATE_GRACE`] to finish, then whatever it got to is removed by the
/// run's label and [`VmFailure::Interrupted`] returned.
pub async fn create(ctx: &Context<'_>, spec: &VmSpec) -> Result<VmHandle, VmFailure> {
    let creating = ctx.target.create_vm(spec);
    let (created, stop) = cancel::let_finish(&ctx.cancel, CREATE_GRACE, creating).await;
    match (created, stop) {
        (Some(Ok(vm)), _) => Ok(vm),
        (Some(Err(source)), false) => Err(VmFailure::Target {
            stage: Stage::Create,
            source,
        }),
        _ => {
            // Whatever the creation got to, found by its labels.
            cancel::remove_run(ctx.target, &spec.labels.run_id, &ctx.progress).await;
            Err(VmFailure::Interrupted)
        }
    }
}

/// Runs `creating` (a VM's creation and whatever must not be cut off with
/// it) to its end. On an interrupt, `announce` is called and the work gets
/// [`CREATE_GRACE`] to finish (so that the VM carries its labels), then
/// `None` is returned: the caller removes the run's VMs by their label.
pub async fn finish_creating<T>(
    ctx: &Context<'_>,
    creating: impl Future<Output = T>,
    announce: impl FnOnce(),
) -> Option<T> {
    tokio::pin!(creating);
    tokio::select! {
        r = &mut creating => Some(r),
        // Not a bare `wait_for`: a receiver whose sender is gone (no one
        // can interrupt) would read as an interrupt.
        () = crate::pipeline::cancel::interrupted(&ctx.cancel) => {
            announce();
            let _ = tokio::time::timeout(CREATE_GRACE, creating).await;
            None
        }
    }
}

/// Gives the stopped VM its NoCloud `seed` and starts it.
pub async fn seed_and_start(
    ctx: &Context<'_>,
    vm: &VmHandle,
    seed: &CloudInit,
) -> Result<(), (Stage, TargetError)> {
    ctx.target
        .set_cloud_init(vm, seed)
        .await
        .map_err(|e| (Stage::Seed, e))?;
    ctx.target.start(vm).await.map_err(|e| (Stage::Start, e))
}

/// Waits up to `timeout` for the VM's SSH server; returns its address.
pub async fn ssh_endpoint(
    ctx: &Context<'_>,
    vm: &VmHandle,
    timeout: Duration,
) -> Result<SocketAddr, (Stage, TargetError)> {
    ctx.target
        .ssh_endpoint(vm, timeout)
        .await
        .map_err(|e| (Stage::Ssh, e))
}

/// [`seed_and_start`], then [`ssh_endpoint`].
pub async fn boot(
    ctx: &Context<'_>,
    vm: &VmHandle,
    seed: &CloudInit,
    timeout: Duration,
) -> Result<SocketAddr, (Stage, TargetError)> {
    seed_and_start(ctx, vm, seed).await?;
    ssh_endpoint(ctx, vm, timeout).await
}

/// Logs in to `addr` as `user` with `key`, accepting only the host key
/// `host` (the one the VM's seed gave it).
pub async fn connect(
    ctx: &Context<'_>,
    addr: SocketAddr,
    user: &str,
    key: ClientKey,
    host: &HostKeyPair,
    timing: Timing,
    sinks: OutputSinks,
) -> Result<Box<dyn GuestSession>, GuestError> {
    let pinned = HostKeyPolicy::Expect(host.public_key().clone());
    connect_pinned(ctx, addr, user, key, pinned, timing, sinks).await
}

/// [`connect`] with the host key given as a policy (a VM whose key was
/// recorded earlier, e.g. in a known_hosts file).
pub async fn connect_pinned(
    ctx: &Context<'_>,
    addr: SocketAddr,
    user: &str,
    key: ClientKey,
    pinned: HostKeyPolicy,
    timing: Timing,
    sinks: OutputSinks,
) -> Result<Box<dyn GuestSession>, GuestError> {
    let target = GuestTarget::new(addr, user, key, pinned).with_timing(timing);
    ctx.connector.connect(&target, sinks).await
}

/// Destroys `vm`, saying so (`{prefix}removed {noun} `NAME``) or warning
/// that it could not.
pub async fn remove(ctx: &Context<'_>, vm: &VmHandle, prefix: &str, noun: &str) {
    match ctx.target.destroy(vm).await {
        Ok(()) => ctx
            .progress
            .info(format!("{prefix}removed {noun} `{}`", vm.name)),
        Err(e) => ctx.progress.warn(format!(
            "{prefix}could not remove {noun} `{}`: {e}",
            vm.name
        )),
    }
}

/// The VMs labelled with `run_id`. A target that does not list them within
/// `timeout` is [`TargetError::Timeout`] (naming `name`): it must not hold
/// a clean-up for the client's whole request timeout.
pub async fn of_run(
    ctx: &Context<'_>,
    run_id: &str,
    timeout: Duration,
    name: &str,
) -> Result<Vec<ManagedVm>, TargetError> {
    let vms = tokio::time::timeout(timeout, ctx.target.list_vms())
        .await
        .unwrap_or_else(|_| {
            Err(TargetError::Timeout {
                name: name.to_owned(),
                what: "the list of VMs to clean up".to_owned(),
                secs: timeout.as_secs(),
            })
        })?;
    Ok(vms
        .into_iter()
        .filter(|m| m.labels.get().is_some_and(|l| l.run_id == run_id))
        .collect())
}
