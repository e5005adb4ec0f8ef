//! A [`GuestBackend`] whose VMs are real QEMU guests, so the simulator can
//! run whole builds. The base template is backed by the local target's base
//! image; a VM whose disk was imported (`import-from`) gets the import's
//! bytes as its disk; every other VM gets, at its first start, a qcow2
//! overlay on its linked-clone source's disk (a template keeps the disk it had as a VM and
//! is never started again, so its disk stays unchanged). The seed ISO
//! attached as `ide2` is read from the simulator's ISO storage and given to
//! QEMU as a drive. SSH is forwarded from 127.0.0.1, port `base + VMID`:
//! the simulator's settings carry that as `ssh_forward`, so the CLI and
//! in-process targets reach the guests the way an operator behind a NAT
//! would. The agent reports `eth0` (net0's MAC, `10.0.2.15`) once the
//! guest's own agent answers on its virtio-serial socket (no SSH probe).
//!
//! The backend has no destroy hook: [`QemuGuests::sweep`] kills and removes
//! what belongs to VMs the simulator no longer has; dropping the backend
//! kills every guest and removes the folder. Each guest's serial console
//! is kept in `VMID.log` ([`Inner::console`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use oxbake::config::SshForward;
use oxbake::progress::Progress;
use oxbake::suite::Suite;
use oxbake::target::local::base::{self, BootstrapOptions};
use oxbake::target::local::base_meta;
use serde_json::{Value, json};

use super::guest::GuestBackend;
use super::qemu_cmd::{Launch, agent_answers, free_port_base, overlay, powerdown, scsi0_gib};
use super::state::{BASE_VMID, Faults, SimVm, State, lock};
use super::{PveSim, VMID_RANGE};

/// The address the agent reports (QEMU user networking's guest address).
pub const GUEST_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 15);

#[derive(Default)]
struct Guest {
    ready: bool,
    error: Option<String>,
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
    port_base: u16,
    shared: Weak<Mutex<State>>,
    guests: Mutex<BTreeMap<u32, Guest>>,
}

impl PveSim {
    /// A simulator whose VMs are QEMU guests on the local target's base
    /// image (bootstrapped when there is none yet). Hold `vm_lock()` while
    /// guests run.
    pub async fn start_qemu_backed() -> (PveSim, QemuGuests) {
        let sim = PveSim::start().await;
        let guests = QemuGuests::install(&sim, &base_image().await);
        (sim, guests)
    }
}

/// The local target's current base image, bootstrapped when missing.
pub async fn base_image() -> PathBuf {
    let cache = base::default_cache_dir();
    match base_meta::current(&cache, Suite::Bookworm).await.unwrap() {
        Some(image) => image.path,
        None => {
            let options = BootstrapOptions::new(cache, Suite::Bookworm);
            base::bootstrap(&options, &Progress::silent())
                .await
                .unwrap()
                .path
        }
    }
}

impl QemuGuests {
    /// Installs QEMU guests in `sim`, the base template backed by `base_image`.
    pub fn install(sim: &PveSim, base_image: &Path) -> Self {
        let port_base = free_port_base(VMID_RANGE);
        let backend = Self(Arc::new(Inner {
            dir: tempfile::Builder::new()
                .prefix("pve-sim-qemu-")
                .tempdir()
                .expect("guest folder"),
            base_image: base_image.to_path_buf(),
            port_base,
            shared: Arc::downgrade(&sim.shared),
            guests: Mutex::default(),
        }));
        sim.set_guests(Arc::new(backend.clone()));
        sim.set_ssh_forward(SshForward {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_base,
        });
        backend
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
        self.file(vmid, "qcow2")
    }

    fn file(&self, vmid: u32, ext: &str) -> PathBuf {
        self.dir.path().join(format!("{vmid}.{ext}"))
    }

    /// The loopback port forwarded to `vmid`'s port 22.
    pub fn port(&self, vmid: u32) -> u16 {
        self.port_base + vmid as u16
    }

    /// What `vmid`'s serial console printed so far.
    pub fn console(&self, vmid: u32) -> String {
        let bytes = std::fs::read(self.file(vmid, "log")).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
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
    fn boot(self: Arc<Self>, vmid: u32, vm: SimVm) {
        if let Err(e) = self.launch(vmid, &vm) {
            eprintln!("pve-sim: VM {vmid} did not start: {e}");
            self.set(vmid, |g| g.error = Some(e));
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(900);
        let mut attempt = u64::from(vmid) << 20;
        while Instant::now() < deadline && self.pid(vmid).is_some() {
            attempt += 1;
            if agent_answers(&self.file(vmid, "qga"), attempt) {
                self.set(vmid, |g| g.ready = true);
                return;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    fn launch(&self, vmid: u32, vm: &SimVm) -> Result<(), String> {
        let disk = self.disk(vmid);
        if !disk.exists() {
            let source = vm.linked_from.ok_or("only linked clones have disks here")?;
            // Templates are stopped VMs: their QEMU has exited.
            if self.pid(source).is_some() {
                return Err(format!("source VM {source} still runs"));
            }
            overlay(&self.disk(source), &disk, scsi0_gib(vm))?;
        }
        let volid = vm.config.get("ide2").and_then(|d| d.split(',').next());
        let seed = match volid {
            Some(volid) => {
                let shared = self.shared.upgrade().ok_or("simulator gone")?;
                let bytes = lock(&shared).volumes.get(volid).cloned();
                let bytes = bytes.ok_or(format!("no volume `{volid}`"))?;
                let path = self.file(vmid, "iso");
                std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
                Some(path)
            }
            None => None,
        };
        let file = |ext: &str| self.file(vmid, ext);
        Launch {
            vm,
            disk,
            seed,
            file: &file,
            port: self.port(vmid),
        }
        .start()
    }
}

impl GuestBackend for QemuGuests {
    fn start(&self, vmid: u32, vm: &SimVm) -> Result<(), String> {
        self.guests.lock().unwrap().insert(vmid, Guest::default());
        let (me, vm) = (self.0.clone(), vm.clone());
        std::thread::spawn(move || me.boot(vmid, vm));
        Ok(())
    }

    fn stop(&self, vmid: u32) {
        self.set(vmid, |g| g.ready = false);
        // Off already after a shutdown; a hard stop otherwise.
        self.kill(vmid);
    }

    /// ACPI power button through QMP, at once: the shutdown task then
    /// lasts until QEMU has exited.
    fn powers_off(&self, vmid: u32, faults: &Faults) -> bool {
        !faults.ignore_shutdown && powerdown(&self.file(vmid, "qmp"))
    }

    fn powered_off(&self, vmid: u32) -> bool {
        self.pid(vmid).is_none()
    }

    /// The import's bytes become the VM's disk (a template's disk, which
    /// its linked clones' overlays are made on).
    fn imported(&self, vmid: u32, image: &[u8]) -> Result<(), String> {
        std::fs::write(self.file(vmid, "qcow2"), image).map_err(|e| e.to_string())
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
