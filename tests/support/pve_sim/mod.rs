//! A Proxmox VE API simulator for tests: HTTPS on 127.0.0.1 with a
//! self-signed certificate (pin its fingerprint), API-token auth, the
//! response envelope and error texts of pve-http-server, parameters checked
//! against the official schema, asynchronous tasks with UPIDs, VM locks,
//! linked clones, templates, ISO and import uploads, VMs created with a
//! disk imported from an upload (`oxbake publish`), version and permission
//! answers tests can change, and a guest agent that takes a few
//! calls to come up. Faults are injected through [`PveSim::faults`]; every
//! request is logged with its raw query and body.
//!
//! What happens inside a VM is a [`guest::GuestBackend`]; the in-memory one
//! is the default. [`qemu_guests::QemuGuests`] (feature `e2e`) runs the
//! local target's QEMU guests instead, reached through the `ssh_forward`
//! the simulator's settings then carry, so whole builds run through the
//! Proxmox code path, in-process or through the CLI ([`cli`]).

use std::sync::{Arc, Mutex};

use oxbake::config::{ProxmoxSettings, SshForward};
use oxbake::progress::Progress;
use oxbake::target::proxmox::{ApiToken, ProxmoxTarget, PveClient, TlsTrust, format_fingerprint};
use sha2::{Digest, Sha256};

// The CLI helpers run the oxbake binary: integration tests only.
#[cfg(test)]
pub mod cli;
pub mod guest;
mod http;
mod import_ops;
mod misc_ops;
mod power_ops;
#[cfg(feature = "e2e")]
mod qemu_cmd;
#[cfg(feature = "e2e")]
pub mod qemu_guests;
mod routes;
mod schema;
mod server;
pub mod state;
mod vm_ops;

pub use state::{BASE_VMID, Faults, HeldAnswer, Logged, NODE, PowerEvent, SignalOn, SimVm};

pub const TOKEN_ID: &str = "oxbake@pve!test";
pub const TOKEN_SECRET: &str = "5e3b0a4c-sim-secret-do-not-log";
/// The VMIDs the simulator's settings let oxbake allocate.
pub const VMID_RANGE: [u32; 2] = [200, 299];

/// A running simulator (it lives as long as the test's runtime).
pub struct PveSim {
    pub addr: std::net::SocketAddr,
    shared: state::Shared,
    /// Set when QEMU guests back the VMs: how SSH reaches them.
    ssh_forward: std::sync::OnceLock<SshForward>,
}

impl PveSim {
    pub async fn start() -> Self {
        let shared = Arc::new(Mutex::new(state::State::new()));
        let auth = format!("PVEAPIToken={TOKEN_ID}={TOKEN_SECRET}");
        let addr = server::serve(shared.clone(), auth).await;
        Self {
            addr,
            shared,
            ssh_forward: std::sync::OnceLock::new(),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// The SHA-256 fingerprint of the simulator's certificate (`AA:BB:…`).
    pub fn fingerprint(&self) -> String {
        use rustls::pki_types::pem::PemObject;
        let der = rustls::pki_types::CertificateDer::from_pem_slice(server::CERT_PEM)
            .expect("test certificate");
        format_fingerprint(&Sha256::digest(der))
    }

    pub fn token() -> ApiToken {
        ApiToken::new(TOKEN_ID, TOKEN_SECRET.to_string()).expect("valid token id")
    }

    /// A client that pins the simulator's certificate.
    pub fn client(&self) -> PveClient {
        let trust = TlsTrust::Fingerprint(
            oxbake::target::proxmox::parse_fingerprint(&self.fingerprint()).expect("fingerprint"),
        );
        PveClient::new(&self.endpoint(), &Self::token(), &trust)
            .expect("client")
            .with_retry_delay(std::time::Duration::from_millis(20))
    }

    /// Settings as an oxbake.toml would give them for this simulator.
    pub fn settings(&self) -> ProxmoxSettings {
        ProxmoxSettings {
            endpoint: self.endpoint(),
            nodes: vec![NODE.to_string()],
            storage: "local-lvm".into(),
            bridge: "vmbr1".into(),
            pool: None,
            vmid_range: VMID_RANGE,
            base_template: BASE_VMID,
            base_templates: Default::default(),
            token_id: TOKEN_ID.into(),
            token_secret_env: "OXBAKE_TEST_PVE_SECRET_UNSET".into(),
            ca_file: None,
            fingerprint: Some(self.fingerprint()),
            iso_storage: misc_ops::ISO_STORAGE.into(),
            import_storage: None,
            full_clone: false,
            ssh_forward: self.ssh_forward.get().cloned(),
            request_timeout: 120,
            task_timeout: 20,
            deploy_jobs: 4,
            build_jobs: 2,
        }
    }

    /// A target over [`PveSim::client`].
    pub fn target(&self, progress: Progress) -> ProxmoxTarget {
        ProxmoxTarget::new(self.client(), self.settings(), progress)
            .with_task_timeout(std::time::Duration::from_secs(20))
    }

    /// `[targets.NAME]` for `settings`, as oxbake.toml text.
    pub fn target_toml(name: &str, settings: ProxmoxSettings) -> String {
        let mut targets = toml::Table::new();
        let value = toml::Value::try_from(oxbake::config::TargetSettings::Proxmox(settings))
            .expect("settings serialise");
        targets.insert(name.to_string(), value);
        let mut doc = toml::Table::new();
        doc.insert("targets".into(), toml::Value::Table(targets));
        let mut text = "\n# The PVE simulator of the tests.\n".to_string();
        text.push_str(&toml::to_string(&doc).expect("toml"));
        text
    }

    /// Changes the fault knobs.
    pub fn faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut state::lock(&self.shared).faults);
    }

    /// Freezes the API now and thaws it after `how_long` (from any
    /// thread, with or without a runtime).
    pub fn freeze_for(&self, how_long: std::time::Duration) {
        self.faults(|f| f.frozen = true);
        let shared = self.shared.clone();
        std::thread::spawn(move || {
            std::thread::sleep(how_long);
            state::lock(&shared).faults.frozen = false;
        });
    }

    /// Every start and shutdown so far, with the guests running after it.
    pub fn power_log(&self) -> Vec<PowerEvent> {
        state::lock(&self.shared).power_log.clone()
    }

    /// The most tasks of type `kind` (`qmclone`, …) that ran at once.
    pub fn most_in_flight(&self, kind: &str) -> u32 {
        state::lock(&self.shared)
            .most_running
            .get(kind)
            .copied()
            .unwrap_or(0)
    }

    pub fn requests(&self) -> Vec<Logged> {
        state::lock(&self.shared).log.clone()
    }

    /// How many requests had `method` and a path ending in `suffix`.
    pub fn count(&self, method: &str, suffix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .count()
    }

    pub fn vm(&self, vmid: u32) -> Option<SimVm> {
        state::lock(&self.shared).vms.get(&vmid).cloned()
    }

    pub fn vmids(&self) -> Vec<u32> {
        state::lock(&self.shared).vms.keys().copied().collect()
    }

    /// Adds a node to the cluster (`nodes` in the settings stay `[pve1]`).
    pub fn add_node(&self, name: &str) {
        state::lock(&self.shared).nodes.push(name.to_string());
    }

    /// Adds a guest (e.g. one "another client" made).
    pub fn insert_vm(&self, vmid: u32, vm: SimVm) {
        state::lock(&self.shared).vms.insert(vmid, vm);
    }

    /// Removes a guest behind oxbake's back (as another client would).
    pub fn remove_vm(&self, vmid: u32) -> Option<SimVm> {
        state::lock(&self.shared).vms.remove(&vmid)
    }

    /// Volume ids (ISO and import) and their contents.
    pub fn volumes(&self) -> Vec<(String, Vec<u8>)> {
        state::lock(&self.shared)
            .volumes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Puts a volume on a storage (as a run that was killed left it).
    pub fn insert_volume(&self, volid: &str, bytes: Vec<u8>) {
        state::lock(&self.shared)
            .volumes
            .insert(volid.to_owned(), bytes);
    }

    /// Replaces what runs inside the VMs.
    pub fn set_guests(&self, backend: Arc<dyn guest::GuestBackend>) {
        state::lock(&self.shared).guests = backend;
    }

    /// Tells clients to reach guests' SSH through `forward` (once).
    #[cfg(feature = "e2e")]
    pub fn set_ssh_forward(&self, forward: SshForward) {
        assert!(self.ssh_forward.set(forward).is_ok(), "one guest backend");
    }
}
