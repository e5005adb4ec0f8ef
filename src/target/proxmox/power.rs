//! Starting a VM, finding its SSH endpoint, and shutting it down (with a
//! forced stop when the guest does not power off in time).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::agent::{pick_address, static_address};
use super::{ProxmoxTarget, PveError, VmRef, vm_ref};
use crate::target::ssh_probe::ssh_banner;
use crate::target::{TargetError, VmHandle};

/// Extra time for a shutdown task beyond the guest's own timeout.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub(super) async fn start(t: &ProxmoxTarget, h: &VmHandle) -> Result<(), TargetError> {
    let vm = vm_ref(h)?;
    let upid = t.client.start_vm(&vm).await.map_err(|e| not_found(h, e))?;
    t.client
        .finish(Some(upid), t.task_timeout)
        .await
        .map_err(|e| match e {
            PveError::TaskFailed { message, .. } => TargetError::Start {
                name: h.name.clone(),
                message,
            },
            other => other.into(),
        })
}

fn not_found(h: &VmHandle, e: PveError) -> TargetError {
    if e.is_not_found() {
        TargetError::VmNotFound(h.name.clone())
    } else {
        e.into()
    }
}

/// Polls the guest agent until it reports an address (or falls back to a
/// static `ipconfig0`), then waits for an SSH banner there.
pub(super) async fn ssh_endpoint(
    t: &ProxmoxTarget,
    h: &VmHandle,
    within: Duration,
) -> Result<SocketAddr, TargetError> {
    let vm = vm_ref(h)?;
    let deadline = Instant::now() + within;
    let config = t.client.vm_config(&vm).await.map_err(|e| not_found(h, e))?;
    let mac = config.net0_mac();
    let fallback = config.get("ipconfig0").as_deref().and_then(static_address);
    loop {
        let ip = agent_address(t, h, &vm, mac.as_deref()).await?.or(fallback);
        if let Some(ip) = ip {
            let addr = (t.ssh_route)(h, ip);
            if ssh_banner(addr).await {
                return Ok(addr);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            let what = match ip {
                Some(ip) => format!("ssh on `{}`", (t.ssh_route)(h, ip)),
                None => "an address from the guest agent".to_string(),
            };
            return Err(TargetError::Timeout {
                name: h.name.clone(),
                what,
                secs: within.as_secs(),
            });
        }
        sleep(Duration::from_millis(500).min(deadline - now)).await;
    }
}

/// The agent's address for the VM, or `None` while the agent is not up.
async fn agent_address(
    t: &ProxmoxTarget,
    h: &VmHandle,
    vm: &VmRef,
    mac: Option<&str>,
) -> Result<Option<IpAddr>, TargetError> {
    match t.client.agent_interfaces(vm).await {
        Ok(nics) => Ok(pick_address(&nics, mac)),
        Err(e) if agent_not_ready(&e) => Ok(None),
        Err(e) if e.message().contains("is not running") => {
            Err(TargetError::VmNotRunning(h.name.clone()))
        }
        Err(e) => Err(not_found(h, e)),
    }
}

/// Errors that mean "ask again later": the agent is not running yet, timed
/// out, or the guest answered with an error.
fn agent_not_ready(e: &PveError) -> bool {
    let m = e.message();
    matches!(e, PveError::Server { .. } | PveError::Transient { .. })
        && (m.contains("guest agent") || m.contains("got timeout"))
}

/// Asks the guest to shut down; stops it hard when it is still running
/// after `within`. `Ok(true)` when it had to force.
pub(super) async fn shutdown(
    t: &ProxmoxTarget,
    h: &VmHandle,
    within: Duration,
) -> Result<bool, TargetError> {
    let vm = vm_ref(h)?;
    let status = t.client.vm_status(&vm).await.map_err(|e| not_found(h, e))?;
    if !status.is_running() {
        return Ok(false);
    }
    let secs = within.as_secs().max(1);
    let upid = t.client.shutdown_vm(&vm, secs).await?;
    let why = match t.client.finish(Some(upid), within + SHUTDOWN_GRACE).await {
        Ok(()) => return Ok(false),
        Err(PveError::TaskFailed { message, .. }) => message,
        Err(PveError::TaskTimeout { .. }) => "the shutdown task did not end".to_string(),
        Err(e) => return Err(e.into()),
    };
    t.progress.warn(format!(
        "vm `{}` did not power off within {secs} s ({why}); stopping it",
        h.name
    ));
    let upid = t.client.stop_vm(&vm, true).await?;
    t.client.finish(Some(upid), t.task_timeout).await?;
    Ok(true)
}
