//! The values that cross the [`super::Target`] boundary.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::suite::Suite;

/// What a new VM's disk starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The target's base image of a suite (local: the suite's current base
    /// qcow2; proxmox: the suite's configured base template).
    Base(Suite),
    Template(TemplateRef),
}

/// A template: its name (`ROLE-VERSION`) and where it lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRef {
    pub name: String,
    pub artifact: Artifact,
}

/// What a template says about itself (proxmox: its description's JSON
/// block): the image version, its inputs hash and its parent `ROLE@VERSION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateMeta {
    pub role: String,
    pub version: String,
    pub inputs: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// Where a template lives, as the registry records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "lowercase")]
pub enum Artifact {
    Local {
        path: PathBuf,
        sha256: String,
    },
    Proxmox {
        node: String,
        vmid: u32,
        name: String,
    },
}

/// Why a VM exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VmKind {
    Builder,
    Smoke,
    Deployed,
}

/// What oxbake attaches to every VM it creates (local: `vm.toml`; proxmox:
/// tags), so `gc` can tell whose leftover a VM is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    pub run_id: String,
    pub role: String,
    pub kind: VmKind,
    /// Deployed VMs: the environment they belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Deployed and smoke-test VMs: the image version they were cloned from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Labels {
    /// Labels of a VM that is not part of an environment.
    pub fn new(run_id: impl Into<String>, role: impl Into<String>, kind: VmKind) -> Self {
        Self {
            run_id: run_id.into(),
            role: role.into(),
            kind,
            env: None,
            version: None,
        }
    }
}

/// A VM to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    pub name: String,
    pub source: Source,
    pub cores: u32,
    pub memory_mib: u32,
    /// Grow the disk to this size (never shrinks).
    pub disk_gib: Option<u32>,
    pub labels: Labels,
    /// A static place on an environment's network (deployed VMs); `None`
    /// keeps the target's default (DHCP).
    pub network: Option<VmNetwork>,
    /// The Proxmox node the VM goes to (`None`: the target's first node).
    /// The local target has one machine and ignores it; `oxbake check`
    /// refuses `nodes` for environments on a local target.
    pub node: Option<String>,
}

/// A deployed VM's static place on its environment's network. Proxmox VMs
/// sit on the bridge and need only the cloud-init network-config; the local
/// target attaches them to the environment's segment (see
/// `target::local::segment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmNetwork {
    /// The network's name (the environment): VMs of one segment reach each
    /// other on every port.
    pub segment: String,
    pub address: std::net::Ipv4Addr,
    pub prefix: u8,
    pub gateway: std::net::Ipv4Addr,
    /// TCP ports the VM offers; the local target also forwards them to
    /// loopback ports of the host.
    #[serde(default)]
    pub ports: Vec<u16>,
}

/// The NICs a target gives a deployed VM, which its seed's network-config
/// must describe ([`super::Target::nics`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmNics {
    /// One NIC, `eth0`, on the environment's bridge: the static address and
    /// the default route through the gateway (proxmox).
    Bridged,
    /// Two NICs, each matched by its MAC (local): `eth0` on the
    /// environment's segment with the static address and no default route,
    /// and `eth1`, the target's management NIC (DHCP, default route,
    /// SSH from the host).
    Segment {
        segment_mac: String,
        management_mac: String,
    },
}

/// A disk image a run uploaded to the target and left there (proxmox: an
/// `import` volume of `oxbake publish`), and what `gc` did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UploadLeftover {
    /// The volume (`local:import/oxbake-ui-2026.12.06.1-0a1b2c3d.qcow2`).
    pub name: String,
    /// The run that uploaded it (from its name).
    pub run_id: String,
    pub removed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A network (local: a segment's switch) that `gc` found no VM using, and
/// what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkLeftover {
    pub name: String,
    pub removed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it is not provably oxbake's: such a network is left as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

/// A VM a target created. `id` is target-specific: the VM's folder name
/// locally, `NODE/VMID` on Proxmox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VmHandle {
    pub name: String,
    pub id: String,
}

/// Whether a VM's guest is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmState {
    Running,
    Stopped,
}

/// A VM found by listing a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedVm {
    pub handle: VmHandle,
    pub labels: VmLabels,
    pub state: VmState,
    /// The Proxmox node the VM runs on (`None` on the local target).
    pub node: Option<String>,
    /// When the target made the VM, if it says (local: the VM's record;
    /// Proxmox: the block oxbake wrote into its description).
    pub created: Option<jiff::Timestamp>,
}

/// A listed VM's labels, or why they cannot be had. `at` names where they
/// should be (local: the `vm.toml` path; proxmox: `NODE/VMID`). A VM whose
/// labels are not [`VmLabels::Read`] is of unknown origin: nothing removes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VmLabels {
    Read(Labels),
    /// The VM carries no labels (local: its folder has no `vm.toml`).
    Missing {
        at: String,
    },
    /// The labels are there but cannot be read or parsed.
    Unreadable {
        at: String,
        reason: String,
    },
}

impl VmLabels {
    /// The labels, if they were read.
    pub fn get(&self) -> Option<&Labels> {
        match self {
            VmLabels::Read(labels) => Some(labels),
            _ => None,
        }
    }

    pub fn into_read(self) -> Option<Labels> {
        match self {
            VmLabels::Read(labels) => Some(labels),
            _ => None,
        }
    }

    /// Why a VM's labels could not be had, naming where they should be.
    pub fn problem(&self) -> Option<String> {
        match self {
            VmLabels::Read(_) => None,
            VmLabels::Missing { at } => Some(format!("`{at}`: no labels")),
            VmLabels::Unreadable { at, reason } => Some(format!("`{at}`: {reason}")),
        }
    }
}

/// The NoCloud documents of one VM. `user_data` may carry secrets: it is
/// never logged and only written to 0600 files.
#[derive(Clone, PartialEq, Eq)]
pub struct CloudInit {
    pub user_data: String,
    pub meta_data: String,
    pub network_config: Option<String>,
}

impl std::fmt::Debug for CloudInit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudInit")
            .field(
                "user_data",
                &format_args!("<{} bytes>", self.user_data.len()),
            )
            .field("meta_data", &self.meta_data)
            .field("network_config", &self.network_config)
            .finish()
    }
}

/// What [`super::Target::verify_template`] found where a record says its
/// template is. A template that is there but is not the recorded image is an
/// error ([`super::TargetError::NotTheRecordedTemplate`]), never a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplatePresence {
    /// The template is there and proves to be the recorded image.
    Ours,
    /// Nothing is there any more: nothing to destroy.
    Gone,
}

impl TemplateMeta {
    /// The differences between what a template says it is (`self`) and
    /// what the record expects, as phrases (`version is X, expected Y`);
    /// empty when role, version and inputs all match. The parent is not
    /// compared: role, version and inputs identify the image.
    pub fn mismatches(&self, expected: &TemplateMeta) -> Vec<String> {
        let mut out = Vec::new();
        let fields = [
            ("role", &self.role, &expected.role),
            ("version", &self.version, &expected.version),
            ("inputs", &self.inputs, &expected.inputs),
        ];
        for (what, found, wanted) in fields {
            if !found.eq_ignore_ascii_case(wanted) {
                out.push(format!(
                    "its description's {what} is `{found}`, expected `{wanted}`"
                ));
            }
        }
        out
    }
}
