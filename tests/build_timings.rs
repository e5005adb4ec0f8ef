//! A whole bake against a target and a guest that only answer (no VM, no
//! SSH): the record it writes keeps how long every phase and recipe step
//! took, the build log ends each section with its duration, and `oxbake
//! show` prints the timings as a table and in `--json`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use oxbake::guest::{
    Command, ExecOutput, ExitStatus, GuestConnector, GuestError, GuestSession, GuestTarget,
    OutputSinks, RemoteFile,
};
use oxbake::pipeline::{BuildOptions, BuildOutcome, Context, build};
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::Registry;
use oxbake::target::{
    Artifact, CloudInit, ManagedVm, Target, TargetError, TemplateMeta, TemplatePresence,
    TemplateRef, VmHandle, VmSpec,
};

use crate::support::project::TestProject;

const RECIPE: &str = r#"role = "timed"
description = "a role whose bake is timed"

[[step]]
name = "first"
kind = "shell"
run = "true"

[[step]]
name = "second"
kind = "shell"
run = "true"

[[check]]
name = "ok"
run = "true"
"#;

/// Every phase of the bake of [`RECIPE`], in order, with its step number.
const PHASES: [(&str, Option<u32>); 11] = [
    ("create the builder VM", None),
    ("boot and connect over SSH", None),
    ("wait for cloud-init", None),
    ("prepare", None),
    ("step 1/2: first", Some(1)),
    ("step 2/2: second", Some(2)),
    ("checks", None),
    ("package manifest", None),
    ("clean up the image", None),
    ("shut down", None),
    ("make the template and record it", None),
];

/// A target whose VMs are names: everything it is asked succeeds.
struct Answering;

#[async_trait]
impl Target for Answering {
    fn kind(&self) -> &'static str {
        "answering"
    }

    async fn create_vm(&self, spec: &VmSpec) -> Result<VmHandle, TargetError> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(VmHandle {
            name: spec.name.clone(),
            id: spec.name.clone(),
        })
    }

    async fn set_cloud_init(&self, _: &VmHandle, _: &CloudInit) -> Result<(), TargetError> {
        Ok(())
    }

    async fn start(&self, _: &VmHandle) -> Result<(), TargetError> {
        Ok(())
    }

    async fn ssh_endpoint(&self, _: &VmHandle, _: Duration) -> Result<SocketAddr, TargetError> {
        Ok(SocketAddr::from(([127, 0, 0, 1], 22)))
    }

    async fn shutdown(&self, _: &VmHandle, _: Duration) -> Result<bool, TargetError> {
        Ok(false)
    }

    async fn make_template(
        &self,
        _: &VmHandle,
        name: &str,
        _: &TemplateMeta,
    ) -> Result<TemplateRef, TargetError> {
        Ok(TemplateRef {
            name: name.to_owned(),
            artifact: Artifact::Proxmox {
                node: "pve1".into(),
                vmid: 9100,
                name: name.to_owned(),
            },
        })
    }

    async fn destroy(&self, _: &VmHandle) -> Result<(), TargetError> {
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
        Ok(Vec::new())
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

/// A guest where every command succeeds, printing one package line (the
/// manifest's format) and cloud-init's `status: done`.
struct AnsweringGuest;

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
        tokio::time::sleep(Duration::from_millis(5)).await;
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

async fn bake(root: &Path) -> String {
    let project = Project::load(root).expect("the project loads");
    let registry = Registry::for_project(root);
    // A live sender: with `cancel::never()` the builder VM's creation
    // (pipeline/vm.rs) takes the gone sender for an interrupt.
    let (_operator, cancel) = tokio::sync::watch::channel(false);
    let ctx = Context {
        project: &project,
        registry: &registry,
        target: &Answering,
        target_name: "answering",
        base_identity: "local:debian-12-test",
        connector: &AnsweringGuest,
        progress: Progress::silent(),
        cancel,
    };
    let outcomes = build(&ctx, &["timed".to_owned()], &BuildOptions::default())
        .await
        .expect("the bake succeeds");
    match &outcomes[..] {
        [BuildOutcome::Built { version, log, .. }] => {
            let log = std::fs::read_to_string(log).expect("the build log");
            for (phase, _) in PHASES {
                assert!(
                    log.contains(&format!("<== {phase}: done after ")),
                    "{phase}: {log}"
                );
            }
            version.clone()
        }
        other => panic!("one role built: {other:?}"),
    }
}

#[tokio::test]
async fn a_built_record_keeps_every_phase_duration_and_show_prints_them() {
    let project = TestProject::copy();
    project.write("recipes/timed.toml", RECIPE);
    let version = bake(project.root()).await;

    let record = Registry::for_project(project.root())
        .get("timed", &version.parse().unwrap())
        .expect("the record");
    let phases: Vec<(&str, Option<u32>)> = record
        .timings
        .iter()
        .map(|t| (t.phase.as_str(), t.step))
        .collect();
    assert_eq!(phases, PHASES);
    assert!(record.timings[0].millis >= 20, "{:?}", record.timings);

    let id = format!("timed@{version}");
    let shown = project.oxbake(&["show", &id]);
    assert_eq!(shown.code(), 0, "{}", shown.stderr());
    let text = shown.stdout();
    assert!(text.contains("\ntimings ("), "{text}");
    for (phase, _) in PHASES {
        assert!(text.contains(&format!("\n  {phase}  ")), "{phase}: {text}");
    }
    let shown = project.oxbake(&["--json", "show", &id]);
    let doc: serde_json::Value = serde_json::from_str(&shown.stdout()).expect("show --json");
    let timings = doc["timings"].as_array().expect("timings");
    assert_eq!(timings.len(), PHASES.len(), "{doc}");
    assert_eq!(timings[4]["phase"], "step 1/2: first");
    assert_eq!(timings[4]["step"], 1);
    assert!(timings[0]["seconds"].as_f64().unwrap() >= 0.02, "{doc}");
}
