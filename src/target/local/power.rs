//! Starting a local VM (with the accelerator probe), waiting for its SSH
//! server, and shutting it down.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;

use super::accel::{self, PROBE_TIME, Plan};
use super::lifecycle::existing;
use super::netdev::{self, NetLaunch};
use super::qemu::{self, Accel, Launch};
use super::state::{VmFiles, VmRecord, read_toml};
use super::{LocalTarget, console, port, process, qmp::Qmp, segment_use};
use crate::target::deadline::Deadline;
use crate::target::ssh_probe::{BANNER_WAIT, ssh_banner};
use crate::target::{TargetError, VmHandle};

/// Launch attempts when the picked SSH port is taken in the meantime.
const PORT_ATTEMPTS: usize = 3;

pub(crate) async fn start(t: &LocalTarget, vm: &VmHandle) -> Result<(), TargetError> {
    let files = existing(t, vm).await?;
    if process::running_pid(&files.pid()).await.is_some() {
        return Err(TargetError::VmRunning(vm.name.clone()));
    }
    let record: VmRecord = read_toml(&files.record()).await?;
    match accel::plan(t.accel) {
        Plan::Use(accel) => launch_any_port(t, &files, &record, accel).await.map(drop),
        Plan::Fallback(reason) => {
            t.progress.info(format!("accelerator: tcg ({reason})"));
            launch_any_port(t, &files, &record, Accel::Tcg)
                .await
                .map(drop)
        }
        Plan::ProbeKvm => match launch_any_port(t, &files, &record, Accel::Kvm).await {
            Ok(_) => probe_kvm(t, &files, &record).await,
            Err(TargetError::Start { message, .. }) => {
                let first = message.lines().next().unwrap_or_default().to_string();
                fall_back(
                    t,
                    &files,
                    &record,
                    format!("qemu could not start under kvm: {first}"),
                )
                .await
            }
            Err(other) => Err(other),
        },
    }
}

/// Watches the first KVM guest; relaunches under TCG if its kernel stays silent.
async fn probe_kvm(t: &LocalTarget, files: &VmFiles, record: &VmRecord) -> Result<(), TargetError> {
    if accel::kernel_runs(&files.serial_log(), PROBE_TIME).await {
        accel::record(Accel::Kvm);
        t.progress
            .info("accelerator: kvm (a guest kernel runs under it)");
        return Ok(());
    }
    let why = format!(
        "a guest under kvm printed no kernel output within {} s",
        PROBE_TIME.as_secs()
    );
    fall_back(t, files, record, why).await
}

async fn fall_back(
    t: &LocalTarget,
    files: &VmFiles,
    record: &VmRecord,
    why: String,
) -> Result<(), TargetError> {
    accel::record(Accel::Tcg);
    t.progress
        .warn(format!("accelerator: tcg ({why}; falling back)"));
    stop_now(files).await;
    let _ = tokio::fs::remove_file(files.serial_log()).await;
    launch_any_port(t, files, record, Accel::Tcg)
        .await
        .map(drop)
}

async fn launch_any_port(
    t: &LocalTarget,
    files: &VmFiles,
    record: &VmRecord,
    accel: Accel,
) -> Result<Launch, TargetError> {
    let with_seed = tokio::fs::try_exists(files.seed()).await.unwrap_or(false);
    // Held until QEMU runs: no other start sees the address free meanwhile.
    let _admitted = match &record.network {
        Some(network) => Some(segment_use::admit(t, &record.name, network).await?),
        None => None,
    };
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let ssh_port = free_port()?;
        let launch = Launch {
            accel,
            cores: record.cores,
            memory_mib: record.memory_mib,
            ssh_port,
            mac: record.mac.clone(),
            with_seed,
            net: net_launch(record)?,
        };
        match qemu::spawn(files, &launch).await {
            Ok(()) => {
                let path = files.ssh_port();
                tokio::fs::write(&path, format!("{ssh_port}\n"))
                    .await
                    .map_err(|e| TargetError::io(&path, e))?;
                if let Some(net) = &launch.net {
                    netdev::publish(&state_root(files), net).await?;
                }
                return Ok(launch);
            }
            Err(TargetError::Command { stderr, .. }) if stderr.contains("hostfwd") => {
                last = Some(stderr)
            }
            Err(TargetError::Command { stderr, .. }) => return Err(start_err(record, stderr)),
            Err(other) => return Err(other),
        }
    }
    Err(start_err(record, last.unwrap_or_default()))
}

fn free_port() -> Result<u16, TargetError> {
    port::free_loopback_port().map_err(|e| TargetError::io("127.0.0.1", e))
}

/// A loopback port for each port a deployed VM offers.
fn net_launch(record: &VmRecord) -> Result<Option<NetLaunch>, TargetError> {
    let Some(network) = &record.network else {
        return Ok(None);
    };
    let forwards = network
        .ports
        .iter()
        .map(|p| free_port().map(|host| (*p, host)))
        .collect::<Result<_, _>>()?;
    Ok(Some(NetLaunch {
        network: network.clone(),
        forwards,
    }))
}

/// `.oxbake/local`, two levels above a VM folder.
fn state_root(files: &VmFiles) -> std::path::PathBuf {
    files
        .dir
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap_or(&files.dir)
        .to_path_buf()
}

fn start_err(record: &VmRecord, message: String) -> TargetError {
    TargetError::Start {
        name: record.name.clone(),
        message,
    }
}

/// Waits until the forwarded port answers with an SSH banner; `within`
/// (`boot_timeout`) bounds the whole wait, each probe included.
pub(crate) async fn ssh_endpoint(
    t: &LocalTarget,
    vm: &VmHandle,
    within: Duration,
) -> Result<SocketAddr, TargetError> {
    let files = existing(t, vm).await?;
    let path = files.ssh_port();
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|e| TargetError::io(&path, e))?;
    let port: u16 = text.trim().parse().map_err(|_| TargetError::State {
        path,
        message: "not a port".into(),
    })?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Deadline::new(format!("ssh on `{addr}`"), within).setting("boot_timeout");
    loop {
        if process::running_pid(&files.pid()).await.is_none() {
            return Err(TargetError::VmNotRunning(vm.name.clone()));
        }
        if ssh_banner(addr, deadline.cap(BANNER_WAIT)).await {
            return Ok(addr);
        }
        if deadline.passed() {
            let mut seen = String::from("qemu runs, its forwarded port gives no SSH banner");
            if let Some(tail) = console::tail(&files.serial_log()).await {
                seen.push_str(&format!("; its console ended with: {tail}"));
            }
            return Err(TargetError::Expired {
                name: vm.name.clone(),
                expired: deadline.expired(Some(seen)),
            });
        }
        deadline.sleep(Duration::from_secs(1)).await;
    }
}

/// ACPI power button, then QMP `quit`, then SIGKILL. `Ok(true)` if forced.
pub(crate) async fn shutdown(
    t: &LocalTarget,
    vm: &VmHandle,
    within: Duration,
) -> Result<bool, TargetError> {
    let files = existing(t, vm).await?;
    let Some(pid) = process::running_pid(&files.pid()).await else {
        return Ok(false);
    };
    let mut qmp = Qmp::connect(&vm.name, &files.qmp()).await?;
    qmp.execute("system_powerdown").await?;
    if process::wait_exit(pid, Instant::now() + within).await {
        return Ok(false);
    }
    t.progress.warn(format!(
        "vm `{}` did not power off within {} s; stopping it",
        vm.name,
        within.as_secs()
    ));
    stop_now(&files).await;
    if process::alive(pid).await {
        return Err(TargetError::VmRunning(vm.name.clone()));
    }
    Ok(true)
}

/// Ends QEMU at once: QMP `quit`, SIGKILL if that does not work.
async fn stop_now(files: &VmFiles) {
    let Some(pid) = process::running_pid(&files.pid()).await else {
        return;
    };
    if let Ok(mut qmp) = Qmp::connect("stop", &files.qmp()).await {
        let _ = qmp.execute("quit").await;
        if process::wait_exit(pid, Instant::now() + Duration::from_secs(5)).await {
            return;
        }
    }
    process::kill(pid).await;
}
