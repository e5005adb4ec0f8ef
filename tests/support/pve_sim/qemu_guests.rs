//! A [`GuestBackend`] whose VMs are real QEMU guests, so the simulator can
//! run whole builds. The base template is backed by the local target's base
//! image; every other VM gets, at its first start, a qcow2 overlay on its
//! linked-clone source's disk (a template keeps the disk it had as a VM and
//! is never started again, so its disk stays unchanged). The seed ISO
//! attached as `ide2` is read from the simulator's ISO storage and given to
//! QEMU as a drive; SSH is forwarded to a loopback port, which
//! [`QemuGuests::route`] hands to `ProxmoxTarget::with_ssh_route`. The agent
//! reports `eth0` (net0's MAC, `10.0.2.15`) once the forwarded port speaks
//! SSH.
//!
//! The backend has no destroy hook: [`QemuGuests::sweep`] kills and removes
//! what belongs to VMs the simulator no longer has; dropping the backend
//! kills every guest and removes the folder.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use oxbake::target::proxmox::SshRoute;
use serde_json::{Value, json};

use super::guest::GuestBackend;
use super::state::{BASE_VMID, Faults, SimVm, State, lock};

/// The address the agent reports (QEMU user networking's guest address).
pub const GUEST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

#[derive(Default)]
struct Guest {
    port: u16,
    ready: bool,
    error: Option<String>,
    /// Set by a shutdown request: the next stop powers down via ACPI.
    graceful: bool,
}

/// A handle on the guests (cheap to clone; the simulator holds one).
#[derive(Clone)]
pub struct QemuGuests(Arc<Inner>);

impl std::ops::Deref for QemuGuests {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

pub struct Inner {
    dir: tempfile::TempDir,
    base_image: PathBuf,
    shared: Weak<Mutex<State>>,
    guests: Arc<Mutex<BTreeMap<u32, Guest>>>,
}

impl QemuGuests {
    /// Installs QEMU guests in `sim`, the base template backed by `base_image`.
    pub fn install(sim: &super::PveSim, base_image: &Path) -> Self {
        let backend = Self(Arc::new(Inner {
            dir: tempfile::Builder::new()
                .prefix("pve-sim-qemu-")
                .tempdir()
                .expect("guest folder"),
            base_image: base_image.to_path_buf(),
            shared: Arc::downgrade(&sim.shared),
            guests: Arc::default(),
        }));
        sim.set_guests(Arc::new(backend.clone()));
        backend
    }

    /// Maps a VM (`NODE/VMID`) to its forwarded SSH port on 127.0.0.1.
    pub fn route(&self) -> SshRoute {
        let guests = self.guests.clone();
        Arc::new(move |vm, ip| {
            let port = vm
                .id
                .split_once('/')
                .and_then(|(_, id)| id.parse::<u32>().ok())
                .and_then(|id| guests.lock().unwrap().get(&id).map(|g| g.port));
            match port {
                Some(port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                None => SocketAddr::new(ip, 22),
            }
        })
    }
}

impl Inner {
    /// The folder that holds disks, seeds and pid files (QEMU command lines
    /// mention it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn disk(&self, vmid: u32) -> PathBuf {
        if vmid == BASE_VMID {
            return self.base_image.clone();
        }
        self.dir.path().join(format!("{vmid}.qcow2"))
    }

    fn file(&self, vmid: u32, ext: &str) -> PathBuf {
        self.dir.path().join(format!("{vmid}.{ext}"))
    }

    /// VMIDs that have a disk here.
    pub fn disks(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".qcow2")?.parse().ok())
            .collect();
        ids.sort();
        ids
    }

    /// The pid of `vmid`'s QEMU, if it runs.
    pub fn pid(&self, vmid: u32) -> Option<u32> {
        let pid = std::fs::read_to_string(self.file(vmid, "pid")).ok()?;
        let pid: u32 = pid.trim().parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let state = stat.rsplit_once(')')?.1.trim_start().chars().next();
        (!matches!(state, None | Some('Z') | Some('X'))).then_some(pid)
    }

    /// Kills and removes what belongs to VMs the simulator no longer has.
    pub fn sweep(&self) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let live: Vec<u32> = lock(&shared).vms.keys().copied().collect();
        for id in self.disks().into_iter().filter(|id| !live.contains(id)) {
            self.kill(id);
            for ext in ["qcow2", "iso", "pid", "log", "qmp", "qga"] {
                let _ = std::fs::remove_file(self.file(id, ext));
            }
            self.guests.lock().unwrap().remove(&id);
        }
    }

    fn kill(&self, vmid: u32) {
        if let Some(pid) = self.pid(vmid) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }

    fn set(&self, vmid: u32, change: impl FnOnce(&mut Guest)) {
        change(self.guests.lock().unwrap().entry(vmid).or_default());
    }

    /// Makes the disk, writes the seed, starts QEMU, then waits for SSH.
    fn boot(self: Arc<Self>, vmid: u32, vm: SimVm, port: u16) {
        if let Err(e) = self.launch(vmid, &vm, port) {
            eprintln!("pve-sim: VM {vmid} did not start: {e}");
            self.set(vmid, |g| g.error = Some(e));
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(900);
        while Instant::now() < deadline && self.pid(vmid).is_some() {
            if speaks_ssh(port) {
                self.set(vmid, |g| g.ready = true);
                return;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    fn launch(&self, vmid: u32, vm: &SimVm, port: u16) -> Result<(), String> {
        let disk = self.disk(vmid);
        if !disk.exists() {
            let source = vm.linked_from.ok_or("only linked clones have disks here")?;
            let deadline = Instant::now() + Duration::from_secs(180);
            while self.pid(source).is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(500));
            }
            self.kill(source);
            overlay(&self.disk(source), &disk, scsi0_gib(vm))?;
        }
        let seed = self.file(vmid, "iso");
        let volid = vm.config.get("ide2").and_then(|d| d.split(',').next());
        if let Some(volid) = volid {
            let shared = self.shared.upgrade().ok_or("simulator gone")?;
            let bytes = lock(&shared).volumes.get(volid).cloned();
            let bytes = bytes.ok_or(format!("no volume `{volid}`"))?;
            std::fs::write(&seed, bytes).map_err(|e| e.to_string())?;
        }
        let conf = |k: &str, d: &str| vm.config.get(k).cloned().unwrap_or(d.into());
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(["-machine", "q35", "-accel", "tcg,thread=multi"])
            .args(["-m", &conf("memory", "1024"), "-smp", &conf("cores", "1")])
            .args(["-display", "none", "-no-user-config", "-nodefaults"])
            .arg("-drive")
            .arg(format!("file={},format=qcow2,if=virtio", disk.display()));
        if volid.is_some() {
            cmd.arg("-drive").arg(format!(
                "file={},format=raw,if=virtio,readonly=on",
                seed.display()
            ));
        }
        let mac = vm.net0_mac().unwrap_or_default().to_lowercase();
        cmd.args([
            "-netdev",
            &format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22"),
        ])
        .args(["-device", &format!("virtio-net-pci,netdev=n0,mac={mac}")])
        .arg("-chardev")
        .arg(format!(
            "socket,path={},server=on,wait=off,id=qga0",
            self.file(vmid, "qga").display()
        ))
        .args(["-device", "virtio-serial", "-device"])
        .arg("virtserialport,chardev=qga0,name=org.qemu.guest_agent.0")
        .args(["-device", "virtio-rng-pci", "-qmp"])
        .arg(format!(
            "unix:{},server=on,wait=off",
            self.file(vmid, "qmp").display()
        ))
        .arg("-serial")
        .arg(format!("file:{}", self.file(vmid, "log").display()))
        .arg("-pidfile")
        .arg(self.file(vmid, "pid"))
        .arg("-daemonize");
        run(&mut cmd)
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `size=NG` of scsi0.
fn scsi0_gib(vm: &SimVm) -> Option<u64> {
    vm.config
        .get("scsi0")?
        .split(',')
        .find_map(|p| p.strip_prefix("size=")?.strip_suffix('G')?.parse().ok())
}

fn overlay(backing: &Path, disk: &Path, gib: Option<u64>) -> Result<(), String> {
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

/// Whether the forwarded port answers with an SSH banner.
fn speaks_ssh(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).is_ok() && &buf == b"SSH-"
}

/// Asks the guest to power off (ACPI) through QMP.
fn powerdown(qmp: &Path) -> bool {
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(qmp) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut greeting = [0u8; 512];
    let _ = s.read(&mut greeting);
    let cmds = b"{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"system_powerdown\"}\n";
    if s.write_all(cmds).is_err() {
        return false;
    }
    // Read the answers so QEMU has handled both before the socket closes.
    let mut answers = String::new();
    while answers.matches("\"return\"").count() < 2 {
        match s.read(&mut greeting) {
            Ok(n) if n > 0 => answers.push_str(&String::from_utf8_lossy(&greeting[..n])),
            _ => return false,
        }
    }
    true
}

impl GuestBackend for QemuGuests {
    fn start(&self, vmid: u32, vm: &SimVm) -> Result<(), String> {
        let port = oxbake::target::local::port::free_loopback_port().map_err(|e| e.to_string())?;
        self.guests.lock().unwrap().insert(
            vmid,
            Guest {
                port,
                ..Guest::default()
            },
        );
        let (me, vm) = (self.0.clone(), vm.clone());
        std::thread::spawn(move || me.boot(vmid, vm, port));
        Ok(())
    }

    fn stop(&self, vmid: u32) {
        let graceful = self
            .guests
            .lock()
            .unwrap()
            .get_mut(&vmid)
            .map(|g| std::mem::replace(&mut g.ready, false) && std::mem::take(&mut g.graceful));
        if graceful != Some(true) || !powerdown(&self.file(vmid, "qmp")) {
            self.kill(vmid);
        }
        // A guest that powers down is waited for by the next clone's start.
    }

    fn powers_off(&self, vmid: u32, faults: &Faults) -> bool {
        self.set(vmid, |g| g.graceful = true);
        !faults.ignore_shutdown
    }

    fn interfaces(&self, vmid: u32, vm: &SimVm, _faults: &Faults) -> Result<Value, String> {
        match self.guests.lock().unwrap().get(&vmid) {
            Some(Guest { error: Some(e), .. }) => return Err(format!("guest failed: {e}")),
            Some(Guest { ready: true, .. }) => {}
            _ => return Err("QEMU guest agent is not running".into()),
        }
        let mac = vm.net0_mac().unwrap_or_default().to_lowercase();
        Ok(json!([
            {"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [
                {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]},
            {"name": "eth0", "hardware-address": mac, "ip-addresses": [
                {"ip-address": GUEST_IP.to_string(), "ip-address-type": "ipv4", "prefix": 24}]}
        ]))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for id in self.disks() {
            self.kill(id);
        }
    }
}
