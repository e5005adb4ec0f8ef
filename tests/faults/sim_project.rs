//! The promote and deploy rows' project on the in-memory Proxmox simulator:
//! a recorded `base` image whose template lives in the simulator (no guest
//! ever boots), a `fx` environment of one VM that runs it, and what a fault
//! may leave there (VMs, seed ISOs, changed templates or earlier VMs).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::time::Duration;

use oxbake::config::ProxmoxSettings;
use oxbake::registry::{Artifact, Registry, Version};

use super::leftovers::{self, passed_image};
use super::runner::Invocation;
use crate::support::project::TestProject;
use crate::support::pve_sim::cli::SECRET_ENV;
use crate::support::pve_sim::{BASE_VMID, NODE, PveSim, SimVm, TOKEN_SECRET};

/// The image's template in the simulator (outside the VMID range oxbake
/// allocates from, so a leftover is any other VMID).
pub const TEMPLATE_VMID: u32 = 150;

/// The environment every deploy row deploys.
pub const ENV: &str = "\n[environments.fx]\ntarget = \"sim\"\nchannel = \"dev\"\n\
    user = \"ops\"\nssh_keys = []\n\n[environments.fx.network]\nprefix = 24\n\
    gateway = \"10.98.0.1\"\n\n[environments.fx.roles.base]\naddresses = [\"10.98.0.10\"]\n";

pub struct SimProject {
    pub project: TestProject,
    /// The recorded image of `base` (not in any channel).
    pub version: Version,
    config: String,
}

impl SimProject {
    pub fn new() -> Self {
        let project = TestProject::copy();
        leftovers::seed_registry(project.root());
        let version = record_base(&Registry::for_project(project.root()));
        let config = project.read("oxbake.toml");
        Self {
            project,
            version,
            config,
        }
    }

    /// Points target `sim` at `settings` (with `boot_timeout`) and adds the
    /// `fx` environment.
    pub fn configure(&self, settings: ProxmoxSettings, boot_timeout: u64) {
        let config: Vec<String> = self
            .config
            .lines()
            .map(|l| match l.starts_with("boot_timeout") {
                true => format!("boot_timeout = {boot_timeout}"),
                false => l.to_owned(),
            })
            .collect();
        self.project.write("oxbake.toml", &config.join("\n"));
        PveSim::add_target(&self.project, "sim", settings);
        let text = self.project.read("oxbake.toml") + ENV;
        self.project.write("oxbake.toml", &text);
    }

    /// A fresh simulator holding the image's template, configured as `sim`.
    pub fn sim(&self, runtime: &tokio::runtime::Runtime, boot_timeout: u64) -> PveSim {
        let sim = runtime.block_on(PveSim::start());
        sim.insert_vm(TEMPLATE_VMID, template());
        self.configure(sim.cli_settings(), boot_timeout);
        sim
    }

    /// `oxbake ARGS…` with the simulator's token secret.
    pub fn run<'a>(&'a self, args: &'a [&'a str]) -> Invocation<'a> {
        Invocation::new(self.project.root(), args)
            .env(SECRET_ENV, TOKEN_SECRET)
            .deadline(Duration::from_secs(120))
    }
}

/// Records `base` as built on `sim` (template [`TEMPLATE_VMID`], checks passed).
fn record_base(registry: &Registry) -> Version {
    record_template(registry, 'c', TEMPLATE_VMID)
}

/// Records an image of `base` (inputs `iii…` for `inputs` = 'i') whose
/// template is `vmid` on the simulator.
pub fn record_template(registry: &Registry, inputs: char, vmid: u32) -> Version {
    let artifact = Artifact::Proxmox {
        node: NODE.into(),
        vmid,
        template: "base-template".into(),
    };
    let image = passed_image(inputs, "sim", artifact);
    registry.record("base", image).expect("record base").version
}

/// An oxbake template of `base` with a channel tag of its own.
pub fn template() -> SimVm {
    let mut config: BTreeMap<String, String> = [
        ("name", "base-template"),
        ("cores", "1"),
        ("memory", "1024"),
        ("net0", "virtio=BC:24:11:00:01:50,bridge=vmbr1"),
        ("scsi0", "local-lvm:base-150-disk-0,size=4G"),
        ("agent", "1"),
        ("tags", "ch-staging;kind-template;oxbake;role-base"),
        ("template", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    config.insert("description".into(), "oxbake template of base".into());
    SimVm {
        node: NODE.into(),
        config,
        ..Default::default()
    }
}

/// What the simulator holds beyond the base template, the image's template
/// and `keep`: VMs and seed ISOs a fault left; and the template's tags if
/// they changed.
pub fn sim_leftovers(sim: &PveSim, keep: &[u32]) -> Vec<String> {
    let mut out: Vec<String> = sim
        .vmids()
        .into_iter()
        .filter(|id| ![BASE_VMID, TEMPLATE_VMID].contains(id) && !keep.contains(id))
        .map(|id| format!("vm {id}"))
        .collect();
    out.extend(sim.volumes().into_iter().map(|(v, _)| format!("iso {v}")));
    let tags = sim
        .vm(TEMPLATE_VMID)
        .and_then(|vm| vm.config.get("tags").cloned());
    if tags.as_deref() != Some("ch-staging;kind-template;oxbake;role-base") {
        out.push(format!("template tags changed: {tags:?}"));
    }
    out
}

/// Settings whose endpoint refuses connections.
pub fn refused(settings: ProxmoxSettings) -> ProxmoxSettings {
    at_port(settings, closed_port())
}

/// Settings whose endpoint accepts connections and never answers.
pub fn black_hole(settings: ProxmoxSettings) -> ProxmoxSettings {
    at_port(settings, silent_port())
}

fn at_port(settings: ProxmoxSettings, port: u16) -> ProxmoxSettings {
    ProxmoxSettings {
        endpoint: format!("https://127.0.0.1:{port}"),
        ..settings
    }
}

/// A port nothing listens on.
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// A port whose server accepts connections and never answers.
pub fn silent_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in l.incoming().flatten() {
            held.push(conn);
        }
    });
    port
}

/// A full tmpfs over the project's state folder `.oxbake` (unmounted on
/// drop): files can be made there, nothing can be written into them.
pub fn full_state_disk(p: &SimProject) -> super::local_disk::Tmpfs {
    let dir = p.project.path(".oxbake");
    let mount = super::local_disk::Tmpfs::mount(&dir, "4k");
    // Fills the one page; the write is expected to fail part-way or not at all.
    let _ = std::fs::write(dir.join("filler"), vec![0u8; 8192]);
    mount
}
