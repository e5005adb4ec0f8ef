//! The QEMU side of [`super::qemu_guests`]: the command line of one guest,
//! qcow2 overlays, and the probes and QMP requests the backend makes.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::state::SimVm;

/// The files and settings of one guest's QEMU.
pub struct Launch<'a> {
    pub vm: &'a SimVm,
    pub disk: PathBuf,
    /// The seed ISO (`ide2`), already written.
    pub seed: Option<PathBuf>,
    /// Where `NAME.EXT` files (pid, log, qmp, qga) go.
    pub file: &'a dyn Fn(&str) -> PathBuf,
    /// The loopback port forwarded to the guest's port 22.
    pub port: u16,
}

impl Launch<'_> {
    /// Starts QEMU (daemonized, TCG), the serial console in `VMID.log`.
    pub fn start(&self) -> Result<(), String> {
        let conf = |k: &str, d: &str| self.vm.config.get(k).cloned().unwrap_or(d.into());
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-machine", "q35", "-accel", "tcg,thread=multi"])
            .args(["-m", &conf("memory", "1024"), "-smp", &conf("cores", "1")])
            .args(["-display", "none", "-no-user-config", "-nodefaults"])
            .arg("-drive")
            .arg(format!(
                "file={},format=qcow2,if=virtio{}",
                self.disk.display(),
                // As Proxmox does for a disk with `discard=on`.
                if conf("scsi0", "").split(',').any(|o| o == "discard=on") {
                    ",discard=unmap"
                } else {
                    ""
                }
            ));
        if let Some(seed) = &self.seed {
            cmd.arg("-drive").arg(format!(
                "file={},format=raw,if=virtio,readonly=on",
                seed.display()
            ));
        }
        let mac = self.vm.net0_mac().unwrap_or_default().to_lowercase();
        let netdev = format!("user,id=n0,hostfwd=tcp:127.0.0.1:{}-:22", self.port);
        cmd.args(["-netdev", &netdev])
            .args(["-device", &format!("virtio-net-pci,netdev=n0,mac={mac}")])
            .arg("-chardev")
            .arg(format!(
                "socket,path={},server=on,wait=off,id=qga0",
                (self.file)("qga").display()
            ))
            .args(["-device", "virtio-serial", "-device"])
            .arg("virtserialport,chardev=qga0,name=org.qemu.guest_agent.0")
            .args(["-device", "virtio-rng-pci", "-qmp"])
            .arg(format!(
                "unix:{},server=on,wait=off",
                (self.file)("qmp").display()
            ))
            .arg("-serial")
            .arg(format!("file:{}", (self.file)("log").display()))
            .arg("-pidfile")
            .arg((self.file)("pid"))
            .arg("-daemonize");
        run(&mut cmd)
    }
}

pub fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `size=NG` of scsi0.
pub fn scsi0_gib(vm: &SimVm) -> Option<u64> {
    vm.config
        .get("scsi0")?
        .split(',')
        .find_map(|p| p.strip_prefix("size=")?.strip_suffix('G')?.parse().ok())
}

/// A qcow2 overlay on `backing`, grown to `gib` when that is larger.
pub fn overlay(backing: &Path, disk: &Path, gib: Option<u64>) -> Result<(), String> {
    let info = Command::new("qemu-img")
        .args(["info", "-U", "--output=json"])
        .arg(backing)
        .output()
        .map_err(|e| e.to_string())?;
    let info: Value = serde_json::from_slice(&info.stdout).map_err(|e| e.to_string())?;
    let have = info["virtual-size"].as_u64().ok_or("no virtual-size")?;
    let mut cmd = Command::new("qemu-img");
    cmd.args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(backing)
        .arg(disk);
    if let Some(want) = gib.map(|g| g << 30).filter(|w| *w > have) {
        cmd.arg(want.to_string());
    }
    run(&mut cmd)
}

/// Whether the guest agent answers on its virtio-serial socket, as
/// Proxmox asks it: a `guest-sync` whose id comes back. (Not an SSH probe:
/// a connection that never logs in counts as a failure for Fail2Ban's
/// aggressive sshd jail, and Proxmox itself never makes one.)
pub fn agent_answers(qga: &Path, id: u64) -> bool {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(qga) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let sync = format!("{{\"execute\":\"guest-sync\",\"arguments\":{{\"id\":{id}}}}}\n");
    if s.write_all(sync.as_bytes()).is_err() {
        return false;
    }
    // qemu-ga answers `{"return": ID}`; compare without the blanks.
    let want = format!("\"return\":{id}}}");
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if seen.replace(char::is_whitespace, "").contains(&want) {
            return true;
        }
    }
    false
}

/// Asks the guest to power off (ACPI) through QMP.
pub fn powerdown(qmp: &Path) -> bool {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(qmp) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 512];
    let _ = s.read(&mut buf);
    let cmds = b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"system_powerdown\"}\n";
    if s.write_all(cmds).is_err() {
        return false;
    }
    // Read the answers so QEMU has handled both before the socket closes.
    let mut answers = String::new();
    while answers.matches("\"return\"").count() < 2 {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => answers.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => return false,
        }
    }
    true
}

/// A base such that `base + VMID` is a free loopback port for every VMID
/// in `vmids`, below the kernel's ephemeral range (where other tests' free
/// ports come from).
pub fn free_port_base(vmids: [u32; 2]) -> u16 {
    let span = vmids[1] - vmids[0] + 1;
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..50u32 {
        let first = 20_000 + (seed.wrapping_add(attempt * 7919) % 12_000);
        let all_free = (first..first + span)
            .all(|p| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, p as u16)).is_ok());
        if all_free {
            return (first - vmids[0]) as u16;
        }
    }
    panic!("no {span} free loopback ports in 20000..32000");
}
