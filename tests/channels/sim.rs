//! Channel tags, revoke and prune against the Proxmox simulator.

use oxbake::pipeline::Context;
use oxbake::pipeline::channel_tags;
use oxbake::pipeline::prune::prune;
use oxbake::pipeline::prune_plan::PruneAction;
use oxbake::pipeline::revoke::revoke;
use oxbake::pipeline::rollback::{RollbackRequest, rollback};
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::{Artifact, ImageRecord, Registry};
use oxbake::suite::Suite;
use oxbake::target::BaseIdentities;
use oxbake::target::proxmox::ProxmoxTarget;
use oxbake::target::{Labels, Source, Target, TemplateMeta, TemplateRef, VmKind, VmSpec};

use super::{Img, record_with};
use crate::support::project::TestProject;
use crate::support::pve_sim::PveSim;

pub(super) fn spec(name: &str, source: Source, kind: VmKind, version: Option<String>) -> VmSpec {
    VmSpec {
        name: name.into(),
        source,
        cores: 1,
        memory_mib: 512,
        disk_gib: None,
        network: None,
        node: None,
        labels: Labels {
            run_id: "run-1".into(),
            role: "ui".into(),
            kind,
            env: version.as_ref().map(|_| "prod".to_owned()),
            version,
        },
    }
}

/// Bakes (without booting) one template in the simulator and records it.
pub(super) async fn image(t: &ProxmoxTarget, registry: &Registry) -> (ImageRecord, TemplateRef) {
    let mut made = None;
    let record = record_with(
        registry,
        "ui",
        Img {
            target: "pve",
            ..Img::root()
        },
        |_, v| {
            made = Some(v.to_string());
            Artifact::Proxmox {
                node: String::new(),
                vmid: 0,
                template: String::new(),
            }
        },
    );
    let version = made.unwrap();
    let name = format!("ui-{version}");
    let vm = t
        .create_vm(&spec(
            &name,
            Source::Base(Suite::Bookworm),
            VmKind::Builder,
            None,
        ))
        .await
        .unwrap();
    let meta = TemplateMeta {
        role: "ui".into(),
        version: version.clone(),
        inputs: record.inputs.to_string(),
        parent: None,
    };
    let tpl = t.make_template(&vm, &name, &meta).await.unwrap();
    // Point the record at the template (a build records it this way).
    let oxbake::target::Artifact::Proxmox { node, vmid, name } = &tpl.artifact else {
        panic!("proxmox artifact")
    };
    let path = registry.dir().join(format!("ui/{version}.toml"));
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "node = \"\"\nvmid = 0\ntemplate = \"\"",
        &format!("node = \"{node}\"\nvmid = {vmid}\ntemplate = \"{name}\""),
    );
    std::fs::write(&path, text).unwrap();
    let record = registry.get("ui", &record.version).unwrap();
    (record, tpl)
}

pub(super) fn vmid(tpl: &TemplateRef) -> u32 {
    match tpl.artifact {
        oxbake::target::Artifact::Proxmox { vmid, .. } => vmid,
        _ => panic!("proxmox"),
    }
}

fn tags(sim: &PveSim, tpl: &TemplateRef) -> String {
    sim.vm(vmid(tpl)).unwrap().config["tags"].clone()
}

#[tokio::test]
async fn channel_tags_move_between_templates_and_read_back() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let project = TestProject::copy();
    let registry = Registry::for_project(project.root());
    let (r1, t1) = image(&t, &registry).await;
    let (r2, t2) = image(&t, &registry).await;
    assert_eq!(
        r1.artifact,
        Artifact::Proxmox {
            node: crate::support::pve_sim::NODE.into(),
            vmid: vmid(&t1),
            template: t1.name.clone(),
        }
    );
    let root = project.root();
    registry
        .set_channel("ui", "dev", &r1.version, "t", "x")
        .unwrap();
    channel_tags::sync((&t, "pve"), &registry, root, ("ui", "dev"), &[r1.version])
        .await
        .unwrap();
    assert_eq!(tags(&sim, &t1), "ch-dev;kind-template;oxbake;role-ui");

    registry
        .set_channel("ui", "staging", &r1.version, "t", "x")
        .unwrap();
    registry
        .set_channel("ui", "dev", &r2.version, "t", "x")
        .unwrap();
    let both = [r2.version, r1.version];
    channel_tags::sync((&t, "pve"), &registry, root, ("ui", "dev"), &both)
        .await
        .unwrap();
    assert_eq!(tags(&sim, &t1), "ch-staging;kind-template;oxbake;role-ui");
    assert_eq!(tags(&sim, &t2), "ch-dev;kind-template;oxbake;role-ui");
    let posts = sim.count("POST", "/config");
    channel_tags::sync((&t, "pve"), &registry, root, ("ui", "dev"), &both)
        .await
        .unwrap();
    assert_eq!(
        sim.count("POST", "/config"),
        posts,
        "tags already right: no write"
    );

    let loaded = Project::load(root).unwrap();
    let req = RollbackRequest {
        role: "ui",
        channel: "dev",
        who: "t",
        why: "bad",
    };
    let change = rollback(&loaded, &registry, (&t, "pve"), &req, &Progress::silent())
        .await
        .unwrap();
    assert_eq!(change.to, r1.version);
    assert_eq!(
        tags(&sim, &t1),
        "ch-dev;ch-staging;kind-template;oxbake;role-ui"
    );
    assert_eq!(tags(&sim, &t2), "kind-template;oxbake;role-ui");
}

#[tokio::test]
async fn revoke_lists_the_deployed_vms_built_from_the_version() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let project = TestProject::copy();
    let registry = Registry::for_project(project.root());
    let (r1, t1) = image(&t, &registry).await;
    let (r2, t2) = image(&t, &registry).await;
    for (name, tpl, version) in [
        ("prod-ui-1", &t1, r1.version),
        ("prod-ui-2", &t1, r1.version),
        ("dev-ui-1", &t2, r2.version),
    ] {
        let s = spec(
            name,
            Source::Template(tpl.clone()),
            VmKind::Deployed,
            Some(version.to_string()),
        );
        t.create_vm(&s).await.unwrap();
    }
    t.create_vm(&spec(
        "smoke-ui",
        Source::Template(t1.clone()),
        VmKind::Smoke,
        Some(r1.version.to_string()),
    ))
    .await
    .unwrap();
    let outcome = revoke(&registry, &t, "ui", &r1.version, "CVE-2026-4", "t")
        .await
        .unwrap();
    assert_eq!(outcome.deployed, ["prod-ui-1", "prod-ui-2"]);
    assert!(registry.get("ui", &r1.version).unwrap().is_revoked());
    assert!(!registry.get("ui", &r2.version).unwrap().is_revoked());
}

#[tokio::test]
async fn prune_keeps_a_template_with_linked_clones_and_removes_the_rest() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let project = TestProject::copy();
    let registry = Registry::for_project(project.root());
    let (r0, t0) = image(&t, &registry).await;
    let (r1, t1) = image(&t, &registry).await;
    let (r2, _t2) = image(&t, &registry).await;
    t.create_vm(&spec(
        "someone-elses-clone",
        Source::Template(t1.clone()),
        VmKind::Smoke,
        None,
    ))
    .await
    .unwrap();
    let (progress, mut events) = Progress::channel();
    let loaded = Project::load(project.root()).unwrap();
    let ctx = Context {
        project: &loaded,
        registry: &registry,
        target: &t,
        target_name: "pve",
        bases: &BaseIdentities::from_fn(|_| String::new()),
        connector: &oxbake::guest::SshConnector,
        progress,
        cancel: oxbake::pipeline::cancel::never(),
    };
    let report = prune(&ctx, 1, false).await.unwrap();
    let fate = |v| report.entries.iter().find(|e| e.version == v).unwrap();
    assert_eq!(fate(r2.version).action, PruneAction::Keep);
    assert_eq!(fate(r0.version).action, PruneAction::Removed);
    assert!(sim.vm(vmid(&t0)).is_none(), "template destroyed");
    assert!(registry.get("ui", &r0.version).is_err(), "record removed");
    let kept = fate(r1.version);
    assert_eq!(kept.action, PruneAction::Keep);
    assert_eq!(kept.why, ["its template has clones (linked clones)"]);
    assert!(sim.vm(vmid(&t1)).is_some());
    assert!(!report.failed());
    drop(ctx);
    let mut warned = false;
    while let Ok(event) = events.try_recv() {
        if let oxbake::progress::Event::Warn(line) = event {
            warned |= line.contains(&format!("kept `{}`", r1.id()));
        }
    }
    assert!(warned, "a warning says why the template stayed");
}
