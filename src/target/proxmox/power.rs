//! Starting a VM, finding its SSH endpoint, and shutting it down (with a
//! forced stop when the guest does not power off in time).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::agent::{choose_address, static_address};
use super::{ProxmoxTarget, PveClient, PveError, VmRef, vm_ref};
use crate::target::deadline::Deadline;
use crate::target::ssh_probe::{BANNER_WAIT, ssh_banner};
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
/// static `ipconfig0`), then waits for an SSH banner there. `within`
/// (`boot_timeout`) bounds the whole wait: every API request and probe
/// gets at most what is left of it.
pub(super) async fn ssh_endpoint(
    t: &ProxmoxTarget,
    h: &VmHandle,
    within: Duration,
) -> Result<SocketAddr, TargetError> {
    let vm = vm_ref(h)?;
    let deadline = Deadline::new("an address from the guest agent", within).setting("boot_timeout");
    let client = t.client.until(deadline.at());
    let config = match deadline.run(client.vm_config(&vm)).await {
        Some(Ok(config)) => config,
        Some(Err(e)) if !(e.went_unanswered() && deadline.passed()) => return Err(not_found(h, e)),
        Some(Err(e)) => return Err(expired(h, &deadline, Seen::from_silence(&e))),
        None => return Err(expired(h, &deadline, Seen::Nothing)),
    };
    let mac = config.net0_mac();
    let fallback = config.get("ipconfig0").as_deref().and_then(static_address);
    let mut seen = Seen::Nothing;
    loop {
        seen = match deadline
            .run(agent_address(&client, &vm, mac.as_deref()))
            .await
        {
            // Cut off by the deadline: what was seen before still stands.
            None if !matches!(seen, Seen::Nothing) => seen,
            None => Seen::Nothing,
            Some(Err(e)) if e.went_unanswered() && deadline.passed() => match seen {
                Seen::Nothing => Seen::from_silence(&e),
                before => before,
            },
            Some(Ok(Ok(ip))) => Seen::Address(ip),
            Some(Ok(Err(report))) => Seen::Unusable(report),
            Some(Err(e)) if agent_not_ready(&e) => Seen::AgentDown(e.message()),
            Some(Err(e)) if e.message().contains("is not running") => {
                return Err(TargetError::VmNotRunning(h.name.clone()));
            }
            Some(Err(e)) => return Err(not_found(h, e)),
        };
        let ip = match seen {
            Seen::Address(ip) => Some(ip),
            _ => fallback,
        };
        if let Some(ip) = ip {
            let addr = (t.ssh_route)(h, ip);
            if ssh_banner(addr, deadline.cap(BANNER_WAIT)).await {
                return Ok(addr);
            }
            if deadline.passed() {
                let mut e = deadline.expired(None);
                e.what = format!("ssh on `{addr}`");
                return Err(TargetError::Expired {
                    name: h.name.clone(),
                    expired: e,
                });
            }
        } else if deadline.passed() {
            return Err(expired(h, &deadline, seen));
        }
        deadline.sleep(Duration::from_millis(500)).await;
    }
}

/// What the boot wait saw last (for its message at the deadline).
enum Seen {
    /// No answer came in time.
    Nothing,
    /// A request to the API went unanswered until the deadline.
    ApiSilent(String),
    /// The API answered that the agent is not up.
    AgentDown(String),
    /// The agent answered with no address that qualifies.
    Unusable(String),
    Address(IpAddr),
}

impl Seen {
    fn from_silence(e: &PveError) -> Self {
        match e {
            PveError::NoAnswer { what, .. } | PveError::Unreachable { what, .. } => {
                Self::ApiSilent(what.clone())
            }
            _ => Self::Nothing,
        }
    }
}

/// The boot wait's error at its deadline.
fn expired(h: &VmHandle, deadline: &Deadline, seen: Seen) -> TargetError {
    let expired = match seen {
        Seen::Nothing | Seen::Address(_) => deadline.expired(None),
        Seen::ApiSilent(what) => deadline.expired(Some(format!("proxmox did not answer `{what}`"))),
        Seen::AgentDown(message) => deadline.expired(Some(message)),
        Seen::Unusable(report) => deadline.ended("no usable address", Some(report)),
    };
    TargetError::Expired {
        name: h.name.clone(),
        expired,
    }
}

/// The agent's address for the VM; what it reported when no address
/// qualifies; an error while the agent is not up.
async fn agent_address(
    client: &PveClient,
    vm: &VmRef,
    mac: Option<&str>,
) -> Result<Result<IpAddr, String>, PveError> {
    let nics = client.agent_interfaces(vm).await?;
    Ok(choose_address(&nics, mac))
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
