//! The simulator's model of a cluster (one node, `pve1`, unless a test adds
//! more): guests, tasks, ISO volumes, fault knobs and the request log.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use super::guest::{GuestBackend, InMemoryGuests};

pub const NODE: &str = "pve1";
pub const BASE_VMID: u32 = 9000;

/// One guest. `config` holds options as Proxmox stores them (text).
#[derive(Debug, Clone, Default)]
pub struct SimVm {
    pub node: String,
    pub config: BTreeMap<String, String>,
    pub running: bool,
    pub lock: Option<String>,
    /// The template this VM is a linked clone of.
    pub linked_from: Option<u32>,
    /// Agent requests since the last start.
    pub agent_calls: u32,
}

impl SimVm {
    pub fn is_template(&self) -> bool {
        self.config.get("template").map(String::as_str) == Some("1")
    }

    pub fn name(&self) -> String {
        self.config.get("name").cloned().unwrap_or_default()
    }

    pub fn net0_mac(&self) -> Option<String> {
        let net0 = self.config.get("net0")?;
        let first = net0.split(',').next()?;
        first.split_once('=').map(|(_, mac)| mac.to_string())
    }
}

/// A worker task, known only to the node it runs on.
#[derive(Debug, Clone)]
pub struct SimTask {
    pub upid: String,
    pub node: String,
    pub kind: String,
    pub exitstatus: Option<String>,
}

/// Fault injection and behaviour knobs; tests set them through
/// [`super::PveSim::faults`].
#[derive(Debug, Clone)]
pub struct Faults {
    /// How long every task runs.
    pub task_time: Duration,
    /// How long tasks of one type (`qmclone`, `qmstart`, …) run instead.
    pub task_times: BTreeMap<&'static str, Duration>,
    /// The next clone task ends with this error (the half-made VM stays).
    pub fail_next_clone: Option<String>,
    /// The next config change answers 500 "can't lock file … got timeout".
    pub lock_timeout_next_config: bool,
    /// The guest agent answers "not running" for this many calls after start.
    pub agent_warmup_calls: u32,
    /// The guest agent never answers.
    pub agent_never: bool,
    /// The guest ignores shutdown requests.
    pub ignore_shutdown: bool,
    /// `POST …/template` answers 500.
    pub fail_convert: bool,
    /// Errors without the body `message` (PVE before pve-http-server 5.2).
    pub legacy_errors: bool,
    /// Answer the next N GETs with 503.
    pub unavailable_gets: u32,
    /// VMIDs left out of `/cluster/resources` (another client's fresh VM).
    pub hidden_vmids: BTreeSet<u32>,
    /// Requests whose work is done at once but whose answer is held back.
    pub held_answers: Vec<HeldAnswer>,
    /// A signal sent to a process when a request arrives (once).
    pub signal_on: Option<SignalOn>,
    /// The API hangs: new connections get no TLS handshake, requests on
    /// open ones no answer (nothing is carried out).
    pub frozen: bool,
    /// Every request is answered `302 Found` with this `Location`.
    pub redirect_to: Option<String>,
    /// What a running agent reports instead of the usual NICs.
    pub agent_reports: Option<Value>,
    /// What `GET /version` reports (`8.4.1`; `release` is its `x.y`).
    pub pve_version: String,
    /// The ISO storage does not take `import` content.
    pub no_import_content: bool,
    /// Privileges the token lacks: (ACL path, privilege).
    pub denied: Vec<(String, String)>,
    /// The next upload's connection is dropped once this many bytes of its
    /// body have arrived (nothing is stored, no answer is sent).
    pub cut_upload_at: Option<usize>,
}

/// Every request with `method` and a path ending in `suffix` is carried
/// out, then answered only after `after` (`None`: never; the connection
/// stays open until the client gives up).
#[derive(Debug, Clone)]
pub struct HeldAnswer {
    pub method: &'static str,
    pub suffix: &'static str,
    pub after: Option<Duration>,
}

/// Sends `signal` (`TERM`, `INT`, …) to `pid` when a request with
/// `method` and a path ending in `suffix` arrives, before it is carried
/// out; the answer then waits `hold`, so the signal lands while the
/// request is in flight.
#[derive(Debug, Clone)]
pub struct SignalOn {
    pub method: &'static str,
    pub suffix: &'static str,
    pub pid: u32,
    pub signal: &'static str,
    pub hold: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            task_time: Duration::from_millis(30),
            task_times: BTreeMap::new(),
            fail_next_clone: None,
            lock_timeout_next_config: false,
            agent_warmup_calls: 2,
            agent_never: false,
            ignore_shutdown: false,
            fail_convert: false,
            legacy_errors: false,
            unavailable_gets: 0,
            hidden_vmids: BTreeSet::new(),
            held_answers: Vec::new(),
            signal_on: None,
            frozen: false,
            redirect_to: None,
            agent_reports: None,
            pve_version: "8.4.1".into(),
            no_import_content: false,
            denied: Vec::new(),
            cut_upload_at: None,
        }
    }
}

/// One request as it arrived (raw query and body, undecoded).
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The raw body; multipart bodies are replaced by their text fields.
    pub body: String,
    pub status: u16,
}

pub struct State {
    /// The cluster's nodes.
    pub nodes: Vec<String>,
    pub vms: BTreeMap<u32, SimVm>,
    pub tasks: BTreeMap<String, SimTask>,
    /// Volumes by volid (`local:iso/x.iso`, `local:import/x.qcow2`).
    pub volumes: BTreeMap<String, Vec<u8>>,
    pub faults: Faults,
    pub log: Vec<Logged>,
    pub next_pid: u32,
    pub next_mac: u32,
    pub guests: Arc<dyn GuestBackend>,
    /// Tasks running now, by type.
    pub running: BTreeMap<String, u32>,
    /// The most tasks of one type that ever ran at once.
    pub most_running: BTreeMap<String, u32>,
    /// Every time a guest came up or went down (start, shutdown).
    pub power_log: Vec<PowerEvent>,
}

/// A guest came up (`up`) or went down, and which guests ran just after.
#[derive(Debug, Clone)]
pub struct PowerEvent {
    pub name: String,
    pub up: bool,
    pub running: Vec<String>,
}

pub type Shared = Arc<Mutex<State>>;

pub fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

impl State {
    pub fn new() -> Self {
        let mut vms = BTreeMap::new();
        vms.insert(BASE_VMID, base_template());
        Self {
            nodes: vec![NODE.to_string()],
            vms,
            tasks: BTreeMap::new(),
            volumes: BTreeMap::new(),
            faults: Faults::default(),
            log: Vec::new(),
            next_pid: 0x1000,
            next_mac: 1,
            guests: Arc::new(InMemoryGuests),
            running: BTreeMap::new(),
            most_running: BTreeMap::new(),
            power_log: Vec::new(),
        }
    }

    /// Logs that guest `id` came up or went down.
    pub fn record_power(&mut self, id: u32, up: bool) {
        let name = self.vms.get(&id).map(SimVm::name).unwrap_or_default();
        let running = self.vms.values().filter(|v| v.running).map(SimVm::name);
        self.power_log.push(PowerEvent {
            name,
            up,
            running: running.collect(),
        });
    }

    pub fn new_mac(&mut self) -> String {
        self.next_mac += 1;
        let n = self.next_mac;
        format!(
            "BC:24:11:{:02X}:{:02X}:{:02X}",
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        )
    }

    pub fn config_json(&self, vm: &SimVm) -> Value {
        let mut map = serde_json::Map::new();
        for (k, v) in &vm.config {
            // Proxmox returns some integers as numbers and memory as a string.
            let value = match k.as_str() {
                "cores" | "sockets" | "template" => v
                    .parse::<u64>()
                    .map(Value::from)
                    .unwrap_or(Value::from(v.clone())),
                _ => Value::from(v.clone()),
            };
            map.insert(k.clone(), value);
        }
        if let Some(lock) = &vm.lock {
            map.insert("lock".into(), Value::from(lock.clone()));
        }
        map.insert(
            "digest".into(),
            Value::from("0123456789abcdef0123456789abcdef01234567"),
        );
        Value::Object(map)
    }
}

/// The base template every test clones from: Debian 12 with a Proxmox
/// cloud-init drive (which oxbake must remove from its clones).
fn base_template() -> SimVm {
    let config = [
        ("name", "debian-12-base"),
        ("cores", "1"),
        ("memory", "1024"),
        ("net0", "virtio=BC:24:11:00:90:00,bridge=vmbr0,firewall=1"),
        ("scsi0", "local-lvm:base-9000-disk-0,size=4G"),
        ("scsihw", "virtio-scsi-pci"),
        ("ide0", "local-lvm:vm-9000-cloudinit,media=cdrom"),
        ("agent", "1"),
        ("tags", "base"),
        ("template", "1"),
    ];
    SimVm {
        node: NODE.into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}
