//! A target whose VMs are names and a guest that answers every command at
//! once (no VM, no SSH), for whole bakes in process: the target keeps the
//! VMs it made (so a clean-up finds and removes them), counts the builder
//! VMs being created at once, can take a while for each creation and can
//! refuse to create the builder of given roles. Shared by
//! tests/build_parallel.rs and examples/build_bench.rs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use oxbake::guest::{
    Command, ExecOutput, ExitStatus, GuestConnector, GuestError, GuestSession, GuestTarget,
    OutputSinks, RemoteFile,
};
use oxbake::target::{
    Artifact, CloudInit, Labels, ManagedVm, Target, TargetError, TemplateMeta, TemplatePresence,
    TemplateRef, VmHandle, VmLabels, VmSpec, VmState,
};

/// A target where everything succeeds, but for the roles in `failing`.
#[derive(Default)]
pub struct Answering {
    /// How long each call to the target takes, by name (`create_vm`,
    /// `refuse` (a refused creation), `start`, `ssh_endpoint`, `shutdown`,
    /// `make_template`, `destroy`).
    pub latency: BTreeMap<&'static str, Duration>,
    /// Roles whose builder VM cannot be created.
    pub failing: Vec<String>,
    /// VMs now, by name, with their labels.
    vms: Mutex<BTreeMap<String, Labels>>,
    /// Creations running now and the most at once.
    creating: Mutex<(usize, usize)>,
    /// Every VM ever destroyed, in order.
    pub destroyed: Mutex<Vec<String>>,
    /// Every VM ever created, in order.
    pub created: Mutex<Vec<String>>,
}

impl Answering {
    /// A target refusing the builders of `failing`, each call taking the
    /// time `latency` gives it (none if not named).
    pub fn new(latency: &[(&'static str, Duration)], failing: &[&str]) -> Self {
        Answering {
            latency: latency.iter().copied().collect(),
            failing: failing.iter().map(|r| r.to_string()).collect(),
            ..Answering::default()
        }
    }

    /// The most builder VMs that were being created at once.
    pub fn most_created_at_once(&self) -> usize {
        self.creating.lock().unwrap().1
    }

    /// Names of the VMs the target has now.
    pub fn vms(&self) -> Vec<String> {
        self.vms.lock().unwrap().keys().cloned().collect()
    }

    async fn wait(&self, call: &str) {
        if let Some(d) = self.latency.get(call) {
            tokio::time::sleep(*d).await;
        }
    }
}

#[async_trait]
impl Target for Answering {
    fn kind(&self) -> &'static str {
        "answering"
    }

    async fn create_vm(&self, spec: &VmSpec) -> Result<VmHandle, TargetError> {
        // A refusal takes its own time (`refuse`), while other creations
        // go on.
        if self.failing.contains(&spec.labels.role) {
            self.wait("refuse").await;
            return Err(TargetError::Command {
                command: format!("create {}", spec.name),
                status: "exit 1".into(),
                stderr: "no room for it".into(),
            });
        }
        {
            let mut c = self.creating.lock().unwrap();
            c.0 += 1;
            c.1 = c.1.max(c.0);
        }
        self.wait("create_vm").await;
        self.creating.lock().unwrap().0 -= 1;
        self.vms
            .lock()
            .unwrap()
            .insert(spec.name.clone(), spec.labels.clone());
        self.created.lock().unwrap().push(spec.name.clone());
        Ok(VmHandle {
            name: spec.name.clone(),
            id: spec.name.clone(),
        })
    }

    async fn set_cloud_init(&self, _: &VmHandle, _: &CloudInit) -> Result<(), TargetError> {
        Ok(())
    }

    async fn start(&self, _: &VmHandle) -> Result<(), TargetError> {
        self.wait("start").await;
        Ok(())
    }

    async fn ssh_endpoint(&self, _: &VmHandle, _: Duration) -> Result<SocketAddr, TargetError> {
        self.wait("ssh_endpoint").await;
        Ok(SocketAddr::from(([127, 0, 0, 1], 22)))
    }

    async fn shutdown(&self, _: &VmHandle, _: Duration) -> Result<bool, TargetError> {
        self.wait("shutdown").await;
        Ok(false)
    }

    async fn make_template(
        &self,
        vm: &VmHandle,
        name: &str,
        _: &TemplateMeta,
    ) -> Result<TemplateRef, TargetError> {
        self.wait("make_template").await;
        self.vms.lock().unwrap().remove(&vm.name);
        Ok(TemplateRef {
            name: name.to_owned(),
            artifact: Artifact::Proxmox {
                node: "pve1".into(),
                vmid: 9100,
                name: name.to_owned(),
            },
        })
    }

    async fn destroy(&self, vm: &VmHandle) -> Result<(), TargetError> {
        self.wait("destroy").await;
        self.vms.lock().unwrap().remove(&vm.name);
        self.destroyed.lock().unwrap().push(vm.name.clone());
        Ok(())
    }

    async fn verify_template(
        &self,
        _: &TemplateRef,
        _: &TemplateMeta,
    ) -> Result<TemplatePresence, TargetError> {
        Ok(TemplatePresence::Ours)
    }

    async fn destroy_template(&self, _: &TemplateRef, _: &TemplateMeta) -> Result<(), TargetError> {
        Ok(())
    }

    async fn list_vms(&self) -> Result<Vec<ManagedVm>, TargetError> {
        let vms = self.vms.lock().unwrap();
        Ok(vms
            .iter()
            .map(|(name, labels)| ManagedVm {
                handle: VmHandle {
                    name: name.clone(),
                    id: name.clone(),
                },
                labels: VmLabels::Read(labels.clone()),
                state: VmState::Running,
                node: None,
                created: None,
            })
            .collect())
    }

    async fn list_templates(&self) -> Result<Vec<TemplateRef>, TargetError> {
        Ok(Vec::new())
    }

    async fn set_template_channels(
        &self,
        _: &TemplateRef,
        _: &[String],
    ) -> Result<(), TargetError> {
        Ok(())
    }
}

/// A guest where every command succeeds at once, printing one package line
/// (the manifest's format) and cloud-init's `status: done`.
pub struct AnsweringGuest;

#[async_trait]
impl GuestConnector for AnsweringGuest {
    async fn connect(
        &self,
        _: &GuestTarget,
        _: OutputSinks,
    ) -> Result<Box<dyn GuestSession>, GuestError> {
        Ok(Box::new(AnsweringGuest))
    }
}

#[async_trait]
impl GuestSession for AnsweringGuest {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 22))
    }

    async fn exec(&mut self, _: &Command) -> Result<ExecOutput, GuestError> {
        Ok(ExecOutput {
            status: ExitStatus::Code(0),
            stdout: "bash\t5.2.15-2+b7\n".into(),
            stdout_tail: "status: done\n".into(),
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
