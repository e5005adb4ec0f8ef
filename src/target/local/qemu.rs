//! The QEMU command line of a local VM, and starting it as a daemon.
//!
//! QEMU runs with the VM folder as its working directory and gets the
//! socket paths relative to it (UNIX socket paths are limited to 107 bytes);
//! the pid file and serial log are absolute so `/proc/PID/cmdline` names the
//! VM unambiguously.

use std::ffi::OsString;
use std::path::Path;

use tokio::process::Command;

use super::state::{DISK, QGA_SOCK, QMP_SOCK, SEED, VmFiles};
use crate::target::{TargetError, exec};

/// An accelerator QEMU actually runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// Everything that varies between two launches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub accel: Accel,
    pub cores: u32,
    pub memory_mib: u32,
    pub ssh_port: u16,
    pub mac: String,
    pub with_seed: bool,
    /// A deployed VM's segment and forwards; `None`: one user-mode NIC.
    pub net: Option<super::netdev::NetLaunch>,
}

/// The arguments after the program name.
pub fn args(files: &VmFiles, launch: &Launch) -> Result<Vec<OsString>, TargetError> {
    let accel = match launch.accel {
        Accel::Kvm => "kvm",
        Accel::Tcg => "tcg,thread=multi",
    };
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |parts: &[&str]| args.extend(parts.iter().map(OsString::from));
    push(&["-machine", "q35", "-accel", accel]);
    push(&[
        "-m",
        &launch.memory_mib.to_string(),
        "-smp",
        &launch.cores.to_string(),
    ]);
    push(&["-display", "none", "-no-user-config", "-nodefaults"]);
    // Discards reach the qcow2 file: the bake's fstrim (and zeroes written
    // by the guest) leave clusters unallocated, so a template is as small
    // as its content.
    push(&[
        "-drive",
        &format!("file={DISK},format=qcow2,if=virtio,discard=unmap,detect-zeroes=unmap"),
    ]);
    if launch.with_seed {
        push(&[
            "-drive",
            &format!("file={SEED},format=raw,if=virtio,readonly=on"),
        ]);
    }
    let nics = super::netdev::nic_args(launch.ssh_port, &launch.mac, launch.net.as_ref())?;
    for nic in &nics {
        push(&["-netdev", &nic.netdev, "-device", &nic.device]);
    }
    let qga = format!("socket,path={QGA_SOCK},server=on,wait=off,id=qga0");
    push(&["-chardev", &qga, "-device", "virtio-serial"]);
    push(&[
        "-device",
        "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
    ]);
    push(&["-qmp", &format!("unix:{QMP_SOCK},server=on,wait=off")]);
    push(&["-device", "virtio-rng-pci"]);
    args.push("-serial".into());
    args.push(prefixed("file:", &files.serial_log()));
    args.push("-pidfile".into());
    args.push(files.pid().into_os_string());
    args.push("-daemonize".into());
    Ok(args)
}

fn prefixed(prefix: &str, path: &Path) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(path.as_os_str());
    s
}

/// Starts QEMU as a daemon; returns once it runs (or failed to start).
pub async fn spawn(files: &VmFiles, launch: &Launch) -> Result<(), TargetError> {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(args(files, launch)?).current_dir(&files.dir);
    exec::run(&mut cmd).await.map(drop)
}

/// A stable, locally administered MAC address for a VM name (QEMU's
/// 52:54:00 prefix).
pub fn mac_for(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(name.as_bytes());
    format!(
        "52:54:00:{:02x}:{:02x}:{:02x}",
        digest[0], digest[1], digest[2]
    )
}

#[cfg(test)]
mod tests;
