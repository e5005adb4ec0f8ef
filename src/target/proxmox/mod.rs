//! The `proxmox` target: a Proxmox VE cluster through its HTTP API.
//!
//! The client half ([`PveClient`] and the call modules) speaks the API:
//! token auth, TLS trust (system roots, a CA file or a pinned fingerprint),
//! the response envelope as typed [`PveError`]s, strict form encoding, UPIDs
//! and task waits. [`ProxmoxTarget`] builds the [`Target`] on it:
//!
//! - VMs are clones of the base template (`base_template`) or of an oxbake
//!   template, on the node the spec names (deploy's placement) or else the
//!   first configured node, with VMIDs from `vmid_range`
//!   (lowest free id, reserved in-process, retried when another client took
//!   it first). They carry the tags `oxbake`, `role-ROLE`, `run-RUNID`,
//!   `kind-KIND` and a JSON block with the exact labels in the description.
//! - Cloud-init data reaches the VM as a NoCloud seed ISO uploaded to
//!   `iso_storage` (`oxbake-seed-VMID.iso`) and attached as `ide2`, so custom
//!   user-data needs no SSH access to the node. Proxmox's own cloud-init
//!   drive is removed from clones.
//! - The SSH address comes from the guest agent (the NIC with `net0`'s MAC),
//!   else from a static `ipconfig0`; port 22 unless a route says otherwise
//!   ([`ProxmoxTarget::with_ssh_route`], used by tests and NAT setups).
//! - Templates are named `ROLE-VERSION`, tagged `oxbake`, `role-ROLE`,
//!   `kind-template`, and describe themselves in a JSON block.
//! - On its own error paths the target removes what it created (a half
//!   cloned VM, a seed ISO). A failed `make_template` leaves the stopped VM
//!   (without its seed) for the caller to keep or destroy.
//! - Images baked elsewhere arrive through the API alone (`ship`, for
//!   `oxbake publish`): checked against the cluster (release, the import
//!   storage's content types, the token's privileges), uploaded as an
//!   `import` volume with a checksum, and imported into a new VM's disk.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

mod access;
mod agent;
mod channel_tags;
mod cluster;
mod create;
mod destroy;
mod envelope;
mod error;
mod form;
mod http;
mod labels;
mod lenient;
mod listing;
mod ownership;
mod power;
mod seed;
mod ship;
mod storage;
mod task;
mod templates;
mod tls;
mod token;
mod unanswered;
mod upid;
mod vm;
mod vmconfig;
mod vmid;

pub use access::PveRelease;
pub use agent::{IfAddress, Interface, choose_address, pick_address, static_address};
pub use cluster::{Resource, split_tags};
pub use error::PveError;
pub use form::{Form, decode_sshkeys, encode_component, sshkeys_value};
pub use http::PveClient;
pub use labels::{parse_description, tag_value};
pub use ship::{ImageVm, OLDEST as OLDEST_IMPORT_RELEASE, ShipError, preflight, upload_name};
pub use storage::StorageStatus;
pub use task::TaskStatus;
pub use tls::{TlsTrust, format_fingerprint, parse_fingerprint};
pub use token::ApiToken;
pub use upid::Upid;
pub use vm::{CloneRequest, VmConfig, VmRef, VmStatus};
pub use vmconfig::ConfigChange;

use crate::config::ProxmoxSettings;
use crate::progress::Progress;
use crate::target::{
    CloudInit, ManagedVm, Target, TargetError, TemplateMeta, TemplatePresence, TemplateRef,
    UploadLeftover, VmHandle, VmSpec,
};

/// Maps the address the guest agent reports to the address oxbake connects
/// to (default: the same address, port 22).
pub type SshRoute = Arc<dyn Fn(&VmHandle, IpAddr) -> SocketAddr + Send + Sync>;

/// A Proxmox VE cluster.
#[derive(Clone)]
pub struct ProxmoxTarget {
    client: PveClient,
    settings: ProxmoxSettings,
    progress: Progress,
    reserved: Arc<Mutex<BTreeSet<u32>>>,
    task_timeout: Duration,
    ssh_route: SshRoute,
}

impl std::fmt::Debug for ProxmoxTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxmoxTarget")
            .field("client", &self.client)
            .field("nodes", &self.settings.nodes)
            .finish_non_exhaustive()
    }
}

impl ProxmoxTarget {
    /// Connects as `settings` say; the token secret is read from the
    /// environment variable `settings.token_secret_env`.
    pub fn from_settings(settings: &ProxmoxSettings, progress: Progress) -> Result<Self, PveError> {
        let token = ApiToken::from_env(&settings.token_id, &settings.token_secret_env)?;
        let client = PveClient::new(&settings.endpoint, &token, &trust(settings)?)?
            .with_request_timeout(Duration::from_secs(settings.request_timeout));
        let target = Self::new(client, settings.clone(), progress);
        Ok(match &settings.ssh_forward {
            Some(forward) => target.with_ssh_route(forward_route(forward.clone())),
            None => target,
        })
    }

    /// A target over an existing client.
    pub fn new(client: PveClient, settings: ProxmoxSettings, progress: Progress) -> Self {
        Self {
            task_timeout: Duration::from_secs(settings.task_timeout),
            client,
            settings,
            progress,
            reserved: Arc::default(),
            ssh_route: Arc::new(|_, ip| SocketAddr::new(ip, 22)),
        }
    }

    /// How long one Proxmox task (clone, start, upload, …) may take
    /// (default: the settings' `task_timeout`).
    pub fn with_task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = timeout;
        self
    }

    /// Replaces the default route (agent address, port 22).
    pub fn with_ssh_route(mut self, route: SshRoute) -> Self {
        self.ssh_route = route;
        self
    }

    pub fn client(&self) -> &PveClient {
        &self.client
    }

    /// The node new VMs go to when their spec names none.
    fn node(&self) -> &str {
        self.settings.nodes.first().map_or("", String::as_str)
    }
}

/// The TLS trust the settings ask for: a fingerprint wins over a CA file.
pub fn trust(settings: &ProxmoxSettings) -> Result<TlsTrust, PveError> {
    if let Some(fp) = &settings.fingerprint {
        return Ok(TlsTrust::Fingerprint(parse_fingerprint(fp)?));
    }
    Ok(match &settings.ca_file {
        Some(path) => TlsTrust::CaFile(path.into()),
        None => TlsTrust::SystemRoots,
    })
}

/// `NODE/VMID` from a handle.
/// `ssh_forward`: the VM's port on the forwarding host; the agent's
/// address, port 22, for a handle that names no VMID (never the case for
/// VMs this target made) or a port beyond 65535 (refused by the settings).
fn forward_route(forward: crate::config::SshForward) -> SshRoute {
    Arc::new(move |vm, ip| {
        let port = vm_ref(vm).ok().and_then(|r| forward.port(r.vmid));
        match port {
            Some(port) => SocketAddr::new(forward.host, port),
            None => SocketAddr::new(ip, 22),
        }
    })
}

fn vm_ref(vm: &VmHandle) -> Result<VmRef, TargetError> {
    let parsed = vm
        .id
        .split_once('/')
        .and_then(|(node, id)| Some((node, id.parse().ok()?)));
    match parsed {
        Some((node, vmid)) if !node.is_empty() => Ok(VmRef {
            node: node.to_string(),
            vmid,
        }),
        _ => Err(TargetError::VmNotFound(format!("{} ({})", vm.name, vm.id))),
    }
}

fn handle(name: &str, vm: &VmRef) -> VmHandle {
    VmHandle {
        name: name.to_string(),
        id: format!("{}/{}", vm.node, vm.vmid),
    }
}

#[async_trait]
impl Target for ProxmoxTarget {
    fn kind(&self) -> &'static str {
        "proxmox"
    }

    async fn create_vm(&self, spec: &VmSpec) -> Result<VmHandle, TargetError> {
        create::create(self, spec).await
    }

    async fn set_cloud_init(&self, vm: &VmHandle, data: &CloudInit) -> Result<(), TargetError> {
        seed::set_cloud_init(self, vm, data).await
    }

    async fn remove_cloud_init(&self, vm: &VmHandle) -> Result<(), TargetError> {
        seed::eject(self, vm).await
    }

    async fn start(&self, vm: &VmHandle) -> Result<(), TargetError> {
        power::start(self, vm).await
    }

    async fn ssh_endpoint(
        &self,
        vm: &VmHandle,
        timeout: Duration,
    ) -> Result<SocketAddr, TargetError> {
        power::ssh_endpoint(self, vm, timeout).await
    }

    async fn shutdown(&self, vm: &VmHandle, timeout: Duration) -> Result<bool, TargetError> {
        power::shutdown(self, vm, timeout).await
    }

    async fn make_template(
        &self,
        vm: &VmHandle,
        name: &str,
        meta: &TemplateMeta,
    ) -> Result<TemplateRef, TargetError> {
        templates::make(self, vm, name, meta).await
    }

    async fn destroy(&self, vm: &VmHandle) -> Result<(), TargetError> {
        destroy::destroy(self, vm).await
    }

    async fn verify_template(
        &self,
        template: &TemplateRef,
        expected: &TemplateMeta,
    ) -> Result<TemplatePresence, TargetError> {
        Ok(ownership::verify(self, template, expected).await?.presence)
    }

    async fn destroy_template(
        &self,
        template: &TemplateRef,
        expected: &TemplateMeta,
    ) -> Result<(), TargetError> {
        templates::destroy(self, template, expected).await
    }

    async fn list_vms(&self) -> Result<Vec<ManagedVm>, TargetError> {
        listing::vms(self).await
    }

    async fn list_templates(&self) -> Result<Vec<TemplateRef>, TargetError> {
        listing::templates(self).await
    }

    async fn sweep_uploads(
        &self,
        ended: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
        dry_run: bool,
    ) -> Result<Vec<UploadLeftover>, TargetError> {
        ship::sweep(self, ended, dry_run).await
    }

    async fn set_template_channels(
        &self,
        template: &TemplateRef,
        channels: &[String],
    ) -> Result<(), TargetError> {
        channel_tags::set(self, template, channels).await
    }
}
