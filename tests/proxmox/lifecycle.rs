//! The target from base image to template and back to nothing.

use super::*;

#[tokio::test]
async fn a_vm_goes_from_base_to_template_and_leaves_nothing_behind() {
    let sim = PveSim::start().await;
    let (route, seen) = fake_sshd().await;
    let t = sim.target(Progress::silent()).with_ssh_route(route);
    let vm = t
        .create_vm(&spec("web-build", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    let id = vmid(&vm);
    assert_eq!(vm.id, format!("{NODE}/{id}"));
    assert!((200..=299).contains(&id));
    let c = sim.vm(id).unwrap().config;
    assert_eq!(c["name"], "web-build");
    assert_eq!(c["tags"], "kind-builder;oxbake;role-web;run-run-7");
    assert_eq!(c["cores"], "2");
    // Grown to the spec's size, with discards passed to the storage.
    assert_eq!(
        c["scsi0"],
        format!("local-lvm:vm-{id}-disk-0,size=10G,discard=on")
    );
    assert!(
        !c.contains_key("ide0"),
        "proxmox's cloud-init drive is removed"
    );
    let mac = sim.vm(id).unwrap().net0_mac().unwrap();
    assert_ne!(mac, "BC:24:11:00:90:00");
    assert_eq!(c["net0"], format!("virtio={mac},bridge=vmbr1"));
    let doc = parse_description(&c["description"]).unwrap();
    assert_eq!(doc["oxbake"]["labels"]["run_id"], "Run-7");

    t.set_cloud_init(&vm, &seed()).await.unwrap();
    let iso = format!("local:iso/oxbake-seed-{id}.iso");
    let volumes = sim.volumes();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].0, iso);
    assert!(
        volumes[0]
            .1
            .windows(6)
            .any(|w| w == b"CIDATA" || w == b"cidata")
    );
    assert_eq!(
        sim.vm(id).unwrap().config["ide2"],
        format!("{iso},media=cdrom")
    );

    t.start(&vm).await.unwrap();
    let addr = t.ssh_endpoint(&vm, Duration::from_secs(20)).await.unwrap();
    assert_eq!(addr.ip(), IpAddr::from([127, 0, 0, 1]));
    let want: IpAddr = pve_sim::guest::guest_ipv4(id).parse().unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), [want]);
    assert!(
        sim.count("GET", "/agent/network-get-interfaces") >= 3,
        "agent warm-up"
    );
    assert!(!t.shutdown(&vm, Duration::from_secs(5)).await.unwrap());

    let meta = TemplateMeta {
        role: "web".into(),
        version: "1.4.0".into(),
        inputs: "sha256:abc".into(),
        parent: Some("base@2.0.0".into()),
    };
    let tpl = t.make_template(&vm, "web-1.4.0", &meta).await.unwrap();
    assert_eq!(
        tpl.artifact,
        Artifact::Proxmox {
            node: NODE.into(),
            vmid: id,
            name: "web-1.4.0".into()
        }
    );
    let c = sim.vm(id).unwrap().config;
    assert_eq!(c["template"], "1");
    assert_eq!(c["tags"], "kind-template;oxbake;role-web");
    assert!(!c.contains_key("ide2"));
    let doc = parse_description(&c["description"]).unwrap();
    assert_eq!(doc["oxbake"]["template"]["version"], "1.4.0");
    assert_eq!(doc["oxbake"]["template"]["parent"], "base@2.0.0");
    assert!(sim.volumes().is_empty(), "the seed holds builder keys");
    assert_eq!(
        t.list_templates().await.unwrap(),
        std::slice::from_ref(&tpl)
    );

    // A linked clone keeps its template alive.
    let child = t
        .create_vm(&spec("web-smoke", Source::Template(tpl.clone())))
        .await
        .unwrap();
    assert_eq!(sim.vm(vmid(&child)).unwrap().linked_from, Some(id));
    let err = t.destroy_template(&tpl, &meta).await.unwrap_err();
    assert!(matches!(err, TargetError::TemplateInUse { .. }), "{err}");
    let listed = t.list_vms().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].labels.get().unwrap().run_id, "Run-7");
    t.destroy(&child).await.unwrap();
    t.destroy_template(&tpl, &meta).await.unwrap();
    assert_eq!(sim.vmids(), [BASE_VMID]);
    assert!(sim.volumes().is_empty());
    t.destroy(&child).await.unwrap();
}

#[tokio::test]
async fn a_guest_that_ignores_shutdown_is_stopped() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let vm = t
        .create_vm(&spec("stubborn", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    t.start(&vm).await.unwrap();
    sim.faults(|f| f.ignore_shutdown = true);
    assert!(t.shutdown(&vm, Duration::from_secs(1)).await.unwrap());
    assert!(!sim.vm(vmid(&vm)).unwrap().running);
    assert_eq!(sim.count("POST", "/status/stop"), 1);
    // A running VM is stopped before it is destroyed.
    t.start(&vm).await.unwrap();
    t.destroy(&vm).await.unwrap();
    assert_eq!(sim.vmids(), [BASE_VMID]);
}

#[tokio::test]
async fn a_template_cannot_be_started() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let base = VmHandle {
        name: "debian-12-base".into(),
        id: format!("{NODE}/{BASE_VMID}"),
    };
    let err = t.start(&base).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "vm `debian-12-base` did not start: you can't start a vm if it's a template"
    );
}

/// A guest backend whose VMs cannot boot: the start task fails with its
/// message, proving the backend is what the API layer consults.
struct BrokenGuests;

impl pve_sim::guest::GuestBackend for BrokenGuests {
    fn start(&self, vmid: u32, _vm: &SimVm) -> Result<(), String> {
        Err(format!("start failed: QEMU exited for {vmid}"))
    }
    fn stop(&self, _vmid: u32) {}
    fn powers_off(&self, _vmid: u32, _faults: &pve_sim::Faults) -> bool {
        true
    }
    fn interfaces(
        &self,
        _vmid: u32,
        _vm: &SimVm,
        _faults: &pve_sim::Faults,
    ) -> Result<serde_json::Value, String> {
        Err("QEMU guest agent is not running".into())
    }
}

#[tokio::test]
async fn the_guest_backend_is_pluggable_and_destroy_sends_purge_flags() {
    let sim = PveSim::start().await;
    sim.set_guests(Arc::new(BrokenGuests));
    let t = sim.target(Progress::silent());
    let vm = t
        .create_vm(&spec("web", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    let err = t.start(&vm).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "vm `web` did not start: start failed: QEMU exited for {}",
            vmid(&vm)
        )
    );
    t.destroy(&vm).await.unwrap();
    let delete = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE" && r.path.ends_with(&format!("/qemu/{}", vmid(&vm))))
        .unwrap();
    assert_eq!(delete.query, "purge=1&destroy-unreferenced-disks=1");
    assert_eq!(delete.status, 200);
    assert!(sim.requests().iter().all(|r| r.status != 401));
}

/// gc on Proxmox: an oxbake-tagged VM whose description block cannot be
/// parsed is unknown, reported with where its labels are and left alone;
/// a readable leftover of a dead run is removed.
#[tokio::test]
async fn gc_leaves_a_tagged_vm_whose_description_block_is_garbled() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let garbled = t
        .create_vm(&spec("web-build", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    let leftover = t
        .create_vm(&spec("web-left", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    let id = vmid(&garbled);
    let mut vm = sim.vm(id).unwrap();
    let description = vm.config["description"].clone();
    let (head, _) = description.split_once("```json\n").unwrap();
    vm.config.insert(
        "description".into(),
        format!("{head}```json\n{{\"oxbake\": {{\"labels\": \n```\n"),
    );
    sim.insert_vm(id, vm);
    let runs = tempfile::tempdir().unwrap();
    for dry_run in [true, false] {
        let found = oxbake::pipeline::gc::collect(&t, runs.path(), dry_run, &Progress::silent())
            .await
            .unwrap();
        let entry = found.iter().find(|l| l.name == "web-build").unwrap();
        let why = entry.unknown.as_deref().unwrap_or_default();
        assert!(
            why.contains(&format!("{NODE}/{id}")) && why.contains("cannot be parsed"),
            "{why}"
        );
        assert!(!entry.removed, "{entry:?}");
        let other = found.iter().find(|l| l.name == "web-left").unwrap();
        assert_eq!(other.removed, !dry_run, "{other:?}");
    }
    assert!(sim.vm(id).is_some(), "the unknown VM stays");
    assert!(
        sim.vm(vmid(&leftover)).is_none(),
        "the dead run's VM is gone"
    );
}

/// A role on trixie starts from trixie's base template; a release without
/// one is refused before anything is cloned.
#[tokio::test]
async fn each_release_clones_its_own_base_template() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let err = t
        .create_vm(&spec("web-build", Source::Base(Suite::Trixie)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no base template for trixie: set `base_templates.trixie` of the proxmox target"
    );
    assert_eq!(sim.count("POST", "/clone"), 0);
    let trixie = BASE_VMID + 1;
    sim.insert_vm(trixie, sim.vm(BASE_VMID).unwrap());
    let mut settings = sim.settings();
    settings.base_templates.insert(Suite::Trixie, trixie);
    let t = oxbake::target::proxmox::ProxmoxTarget::new(sim.client(), settings, Progress::silent())
        .with_task_timeout(Duration::from_secs(20));
    t.create_vm(&spec("web-build", Source::Base(Suite::Trixie)))
        .await
        .unwrap();
    assert_eq!(sim.count("POST", &format!("/qemu/{trixie}/clone")), 1);
    assert_eq!(sim.count("POST", &format!("/qemu/{BASE_VMID}/clone")), 0);
}
