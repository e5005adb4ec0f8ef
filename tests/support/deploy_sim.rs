//! Deploys in process against the Proxmox simulator, with guests that only
//! exist as answers: every VM's SSH "banner" is one loopback listener
//! (reached at `127.0.X.Y`, the VMID in the address) and the connector's
//! sessions answer cloud-init and the role's checks as a healthy guest
//! would, unless the VM runs a version the test marks as failing (its
//! cloud-init then ends in `status: error`). Shared by tests/deploy and
//! examples/deploy_bench.rs.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use oxbake::guest::{
    Command, ExecOutput, ExitStatus, GuestConnector, GuestError, GuestSession, GuestTarget,
    OutputSinks, RemoteFile,
};
use oxbake::pipeline::Context;
use oxbake::pipeline::deploy::{DeployError, Deployer, Done};
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::{Artifact, NewImage, Registry, Version};
use oxbake::target::BaseIdentities;
use oxbake::target::VmHandle;
use oxbake::target::proxmox::ProxmoxTarget;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::pve_sim::{BASE_VMID, NODE, PveSim};

/// The environment the harness deploys: `base` first (unless in one wave),
/// then VMs of role `services`.
pub const ENV: &str = "grid";

/// Guests answering for the simulator's VMs.
pub struct FakeGuests {
    sim: Arc<PveSim>,
    /// `run` of every check of the project's recipes and what a healthy
    /// guest prints for it.
    answers: Vec<(String, String)>,
    /// Versions whose VMs fail their health.
    pub failing: Mutex<BTreeSet<String>>,
    /// VMIDs logged in to, in order.
    pub logins: Mutex<Vec<u32>>,
}

#[async_trait]
impl GuestConnector for FakeGuests {
    async fn connect(
        &self,
        target: &GuestTarget,
        _sinks: OutputSinks,
    ) -> Result<Box<dyn GuestSession>, GuestError> {
        let vmid = vmid_of(target.addr);
        self.logins.lock().unwrap().push(vmid);
        let description = self
            .sim
            .vm(vmid)
            .and_then(|vm| vm.config.get("description").cloned())
            .unwrap_or_default();
        let failing = self.failing.lock().unwrap();
        let fails = failing.iter().any(|v| description.contains(v.as_str()));
        Ok(Box::new(FakeSession {
            addr: target.addr,
            fails,
            answers: self.answers.clone(),
        }))
    }
}

struct FakeSession {
    addr: SocketAddr,
    fails: bool,
    answers: Vec<(String, String)>,
}

#[async_trait]
impl GuestSession for FakeSession {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn exec(&mut self, cmd: &Command) -> Result<ExecOutput, GuestError> {
        let stdout = if cmd.script.starts_with("cloud-init status") {
            let status = if self.fails { "error" } else { "done" };
            format!("status: {status}\n")
        } else {
            let answer = self.answers.iter().find(|(run, _)| *run == cmd.script);
            answer.map(|(_, out)| out.clone()).unwrap_or_default()
        };
        let code = u32::from(self.fails && stdout.contains("error"));
        Ok(ExecOutput {
            status: ExitStatus::Code(code),
            stdout_tail: stdout.clone(),
            stdout,
            stderr_tail: String::new(),
        })
    }

    async fn upload(&mut self, _: &[u8], _: &RemoteFile) -> Result<(), GuestError> {
        Ok(())
    }

    async fn download(&mut self, _: &str) -> Result<Vec<u8>, GuestError> {
        Ok(Vec::new())
    }

    async fn close(self: Box<Self>) -> Result<(), GuestError> {
        Ok(())
    }
}

/// The VMID a guest is reached at (`127.0.X.Y`, X·256+Y).
fn vmid_of(addr: SocketAddr) -> u32 {
    match addr.ip() {
        IpAddr::V4(ip) => {
            let [_, _, hi, lo] = ip.octets();
            u32::from(hi) * 256 + u32::from(lo)
        }
        IpAddr::V6(_) => 0,
    }
}

/// A project copy with environment `grid` on the simulator, images for
/// `base` and `services` in channel `dev`, and the guests.
pub struct Harness {
    pub sim: Arc<PveSim>,
    pub dir: tempfile::TempDir,
    pub guests: FakeGuests,
    banner_port: u16,
}

impl Harness {
    /// `base` (one VM), then `services` VMs of role services (at most 20).
    pub async fn new(services: usize) -> Self {
        Self::with(services, true).await
    }

    /// `services` VMs of role services, one wave.
    pub async fn one_wave(services: usize) -> Self {
        Self::with(services, false).await
    }

    async fn with(services: usize, base: bool) -> Self {
        let sim = Arc::new(PveSim::start().await);
        sim.faults(|f| f.agent_warmup_calls = 0);
        let dir = tempfile::tempdir().expect("temp dir");
        copy_project(dir.path());
        let mut text = std::fs::read_to_string(dir.path().join("oxbake.toml")).unwrap();
        text.push_str(&env_toml(services, base));
        text.push_str(&PveSim::target_toml("sim", sim.settings()));
        std::fs::write(dir.path().join("oxbake.toml"), text).unwrap();
        let project = Project::load(dir.path()).expect("project loads");
        // Recipes share some checks' commands: one answer holds every
        // line any of them expects.
        let mut answers: Vec<(String, String)> = Vec::new();
        for c in project
            .recipes
            .values()
            .flat_map(|f| f.recipe.checks.iter())
        {
            let lines = c.stdout_contains.join("\n");
            match answers.iter_mut().find(|(run, _)| *run == c.run) {
                Some((_, out)) => *out = format!("{out}\n{lines}"),
                None => answers.push((c.run.clone(), lines)),
            }
        }
        let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
        let banner_port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"SSH-2.0-fake\r\n").await;
            }
        });
        let guests = FakeGuests {
            sim: sim.clone(),
            answers,
            failing: Mutex::new(BTreeSet::new()),
            logins: Mutex::new(Vec::new()),
        };
        let h = Self {
            sim,
            dir,
            guests,
            banner_port,
        };
        h.release("base", 'a');
        h.release("services", 'b');
        h
    }

    /// Records a new image of `role` (inputs all `inputs`) and points `dev`
    /// at it; its version.
    pub fn release(&self, role: &str, inputs: char) -> Version {
        let registry = Registry::for_project(self.dir.path());
        let image = NewImage {
            inputs: inputs.to_string().repeat(64).parse().unwrap(),
            parent: "base-image:debian-12-test".parse().unwrap(),
            target: "sim".into(),
            artifact: Artifact::Proxmox {
                node: NODE.into(),
                vmid: BASE_VMID,
                template: "debian-12-base".into(),
            },
            repositories: Default::default(),
            packages: Default::default(),
            checks: vec![],
            builder: None,
            size: None,
        };
        let record = registry.record(role, image).unwrap();
        registry
            .set_channel(role, "dev", &record.version, "test", "release")
            .unwrap();
        record.version
    }

    /// The target, every VM's SSH routed to the banner listener.
    pub fn target(&self, progress: Progress) -> ProxmoxTarget {
        let port = self.banner_port;
        self.sim
            .target(progress)
            .with_ssh_route(Arc::new(move |h: &VmHandle, _| {
                let vmid: u32 = h.id.rsplit('/').next().unwrap().parse().unwrap();
                let ip = Ipv4Addr::new(127, 0, (vmid / 256) as u8, (vmid % 256) as u8);
                SocketAddr::new(IpAddr::V4(ip), port)
            }))
    }

    /// A deploy with every VM at once, no progress and no interrupt.
    pub async fn deploy_quiet(&self) -> Result<Vec<Done>, DeployError> {
        self.deploy(None, Progress::silent(), oxbake::pipeline::cancel::never())
            .await
    }

    /// Deploys `grid` (`jobs`: `--jobs`) with `cancel` as the interrupt.
    pub async fn deploy(
        &self,
        jobs: Option<usize>,
        progress: Progress,
        cancel: watch::Receiver<bool>,
    ) -> Result<Vec<Done>, DeployError> {
        let project = Project::load(self.dir.path()).expect("project loads");
        let registry = Registry::for_project(self.dir.path());
        let target = self.target(progress.clone());
        let ctx = Context {
            project: &project,
            registry: &registry,
            target: &target,
            target_name: "sim",
            bases: &BaseIdentities::from_fn(|_| String::new()),
            connector: &self.guests,
            progress,
            cancel,
        };
        let deployer = Deployer {
            ctx: &ctx,
            env_name: ENV,
            env: &project.config.environments[ENV],
            boot_timeout: Duration::from_secs(20),
            jobs,
        };
        let prepared = deployer.prepare().await?;
        deployer.apply(prepared).await
    }

    /// Changes the number of services VMs.
    pub fn set_services(&self, count: usize) {
        let path = self.dir.path().join("oxbake.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text.find(SERVICES_START).unwrap();
        let end = start + text[start..].find(SERVICES_END).unwrap();
        let text = format!("{}{}{}", &text[..start], services_toml(count), &text[end..]);
        std::fs::write(path, text).unwrap();
    }
}

const SERVICES_START: &str = "[environments.grid.roles.services]\n";
const SERVICES_END: &str = "# end of the services role's settings\n";
const BASE_ROLE: &str = "[environments.grid.roles.base]\naddresses = [\"10.98.0.10\"]\n\n";
const AFTER_BASE: &str = "after = [\"base\"]\n";

fn services_toml(count: usize) -> String {
    let addresses: Vec<String> = (0..count)
        .map(|i| format!("\"10.98.0.{}\"", 20 + i))
        .collect();
    format!(
        "{SERVICES_START}count = {count}\naddresses = [{}]\n",
        addresses.join(", ")
    )
}

fn env_toml(services: usize, base: bool) -> String {
    let (base, after) = if base {
        (BASE_ROLE, AFTER_BASE)
    } else {
        ("", "")
    };
    format!(
        r#"
[environments.grid]
target = "sim"
channel = "dev"
user = "ops"

[environments.grid.network]
prefix = 24
gateway = "10.98.0.1"

{base}{}{after}{SERVICES_END}
[environments.grid.roles.services.values]
relay_host = ""
mail_domain = "grid.example"
allowed_networks = "10.98.0.0/24"
"#,
        services_toml(services)
    )
}

/// oxbake.toml, recipes/, templates/ and files/ of this repository.
fn copy_project(to: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(src.join("oxbake.toml"), to.join("oxbake.toml")).unwrap();
    for sub in ["recipes", "templates", "files"] {
        copy_tree(&src.join(sub), &to.join(sub));
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
