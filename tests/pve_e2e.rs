//! End-to-end bake on the Proxmox target: the real pipeline, in-process,
//! against the PVE simulator whose guests are QEMU VMs (see
//! support::pve_sim::qemu_guests). `ui` is requested, so `base` is baked
//! first; afterwards only the simulator's base template and the two role
//! templates exist, described by tags and a JSON block, and matching the
//! registry records.
#![cfg(feature = "e2e")]

use std::time::{Duration, Instant};

use oxbake::guest::SshConnector;
use oxbake::pipeline::{BuildOptions, BuildOutcome, Pipeline};
use oxbake::progress::{Event, Progress};
use oxbake::project::Project;
use oxbake::registry::Artifact;
use oxbake::registry::Registry;
use oxbake::target::local::base::{self, BootstrapOptions};
use oxbake::target::local::base_meta;
use oxbake::target::proxmox::{ProxmoxTarget, parse_description};
use tokio::sync::watch;

use crate::support::e2e::vm_lock;
use crate::support::project::TestProject;
use crate::support::pve_sim::qemu_guests::QemuGuests;
use crate::support::pve_sim::{BASE_VMID, NODE, PveSim};
use crate::support::qemu::{Reaper, qemu_pids};

/// Prints progress lines (not guest output) with the time since start.
fn progress() -> Progress {
    let (progress, mut rx) = Progress::channel();
    let started = Instant::now();
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            let line = match event {
                Event::GuestLine { .. } | Event::Transfer { .. } => continue,
                Event::StepFinished {
                    step, ok, elapsed, ..
                } => {
                    format!("step `{step}` ok={ok} in {:.0}s", elapsed.as_secs_f64())
                }
                other => format!("{other:?}"),
            };
            eprintln!("[{:>5.0}s] {line}", started.elapsed().as_secs_f64());
        }
    });
    progress
}

#[test]
fn ui_is_baked_on_the_simulator_and_leaves_only_templates() {
    let _vms = vm_lock();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(bake_ui_and_check());
}

async fn bake_ui_and_check() {
    let cache = base::default_cache_dir();
    let image = match base_meta::current(&cache).await.unwrap() {
        Some(image) => image,
        None => base::bootstrap(&BootstrapOptions::new(cache), &Progress::silent())
            .await
            .unwrap(),
    };
    let sim = PveSim::start().await;
    let guests = QemuGuests::install(&sim, &image.path);
    let _reaper = Reaper(guests.dir().to_path_buf());
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pve-e2e-project");
    let copy = TestProject::copy_to(&dir);
    let project = Project::load(copy.root()).unwrap();
    let registry = Registry::for_project(copy.root());
    let settings = sim.settings();
    let target = ProxmoxTarget::new(sim.client(), settings.clone(), progress())
        .with_task_timeout(Duration::from_secs(300))
        .with_ssh_route(guests.route());
    let (_cancel_tx, cancel) = watch::channel(false);
    let pipeline = Pipeline {
        project: &project,
        registry: &registry,
        target: &target,
        target_name: "sim".into(),
        base_identity: format!("proxmox:{}#{}", settings.endpoint, settings.base_template),
        connector: &SshConnector,
        progress: progress(),
        cancel,
        log_dir: copy.root().join(".oxbake/logs"),
    };
    let started = Instant::now();
    let outcomes = pipeline
        .build(&["ui".to_string()], &BuildOptions::default())
        .await;
    eprintln!(
        "pve e2e: base + ui baked in {:.0}s",
        started.elapsed().as_secs_f64()
    );
    let outcomes = outcomes.unwrap_or_else(|e| panic!("build failed: {e}"));
    let built: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            BuildOutcome::Built { role, .. } => role.as_str(),
            other => panic!("not built: {other:?}"),
        })
        .collect();
    assert_eq!(built, ["base", "ui"]);

    let base = registry.latest("base", true).unwrap().expect("base record");
    let ui = registry.latest("ui", true).unwrap().expect("ui record");
    assert_eq!(ui.parent.to_string(), base.id());
    let mut templates = vec![BASE_VMID];
    for record in [&base, &ui] {
        assert_eq!(record.target, "sim");
        let Artifact::Proxmox {
            node,
            vmid,
            template: name,
        } = &record.artifact
        else {
            panic!(
                "{}: not a proxmox artifact: {:?}",
                record.id(),
                record.artifact
            );
        };
        assert_eq!(node, NODE);
        let vm = sim.vm(*vmid).expect("the template VM exists");
        assert!(vm.is_template(), "{} is a template", record.id());
        assert_eq!(&vm.name(), name);
        let tags: Vec<&str> = vm.config["tags"].split(';').collect();
        let role_tag = format!("role-{}", record.role);
        assert!(
            tags.contains(&"oxbake") && tags.contains(&role_tag.as_str()),
            "{tags:?}"
        );
        let doc = parse_description(&vm.config["description"]).expect("JSON description");
        let meta = &doc["oxbake"]["template"];
        assert_eq!(meta["version"], record.version.to_string(), "{doc}");
        assert_eq!(meta["inputs"], record.inputs.to_string(), "{doc}");
        // Root roles name no parent image; ui names its base.
        let parent = meta["parent"].as_str().map(str::to_string);
        assert_eq!(parent, (record.role == "ui").then(|| base.id()), "{doc}");
        templates.push(*vmid);
    }
    templates.sort();
    assert_eq!(sim.vmids(), templates, "no builder VM remains");
    let volumes: Vec<String> = sim.volumes().into_iter().map(|(v, _)| v).collect();
    assert!(volumes.is_empty(), "seed ISOs left: {volumes:?}");
    guests.sweep();
    assert_eq!(guests.disks(), templates[1..], "only template disks remain");
    assert!(
        qemu_pids(guests.dir()).is_empty(),
        "no QEMU process remains"
    );
}
