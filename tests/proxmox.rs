//! The Proxmox client and target against the API simulator
//! (tests/support/pve_sim): error classes, encodings, TLS pinning, and the
//! target's lifecycle and fault paths.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxbake::progress::Progress;
use oxbake::target::proxmox::{
    ApiToken, ConfigChange, Form, PveClient, PveError, TlsTrust, VmRef, decode_sshkeys,
    parse_description, parse_fingerprint,
};
use oxbake::target::{
    Artifact, CloudInit, Labels, Source, Target, TargetError, TemplateMeta, VmHandle, VmKind,
    VmSpec,
};
use tokio::io::AsyncWriteExt;

use crate::support::pve_sim::{self, BASE_VMID, NODE, PveSim, SimVm};

fn base() -> VmRef {
    VmRef {
        node: NODE.into(),
        vmid: BASE_VMID,
    }
}

fn spec(name: &str, source: Source) -> VmSpec {
    VmSpec {
        name: name.into(),
        source,
        cores: 2,
        memory_mib: 2048,
        disk_gib: Some(10),
        labels: Labels {
            run_id: "Run-7".into(),
            role: "web".into(),
            kind: VmKind::Builder,
        },
    }
}

fn vmid(h: &VmHandle) -> u32 {
    h.id.rsplit('/').next().unwrap().parse().unwrap()
}

fn seed() -> CloudInit {
    CloudInit {
        user_data: "#cloud-config\n{\"users\": []}\n".into(),
        meta_data: "{\"instance-id\": \"i-1\"}\n".into(),
        network_config: None,
    }
}

/// A listener that greets like sshd, and a route to it that records the
/// address the target wanted.
async fn fake_sshd() -> (oxbake::target::proxmox::SshRoute, Arc<Mutex<Vec<IpAddr>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"SSH-2.0-sim\r\n").await;
        }
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let route: oxbake::target::proxmox::SshRoute = Arc::new(move |_, ip| {
        log.lock().unwrap().push(ip);
        SocketAddr::from(([127, 0, 0, 1], port))
    });
    (route, seen)
}

#[tokio::test]
async fn a_wrong_secret_is_an_auth_error_that_never_shows_the_secret() {
    let sim = PveSim::start().await;
    let token = ApiToken::new(pve_sim::TOKEN_ID, "wrong-secret-123".into()).unwrap();
    let trust = TlsTrust::Fingerprint(parse_fingerprint(&sim.fingerprint()).unwrap());
    let client = PveClient::new(&sim.endpoint(), &token, &trust).unwrap();
    let err = client.next_id().await.unwrap_err();
    assert!(matches!(err, PveError::Auth { status: 401, .. }), "{err}");
    let shown = format!("{err} {err:?} {client:?} {token:?}");
    assert!(!shown.contains("wrong-secret-123"), "{shown}");
    assert!(err.to_string().contains("authentication failure"), "{err}");
    // The right token works, and its secret is in no Debug output either.
    let good = sim.client();
    assert_eq!(good.next_id().await.unwrap(), 100);
    assert!(!format!("{good:?}").contains(pve_sim::TOKEN_SECRET));
}

#[tokio::test]
async fn the_pinned_fingerprint_is_required_and_a_wrong_one_fails_closed() {
    let sim = PveSim::start().await;
    assert!(sim.client().next_id().await.is_ok());
    let mut wrong = parse_fingerprint(&sim.fingerprint()).unwrap();
    wrong[0] ^= 0xff;
    let client = PveClient::new(
        &sim.endpoint(),
        &PveSim::token(),
        &TlsTrust::Fingerprint(wrong),
    )
    .unwrap()
    .with_retry_delay(Duration::from_millis(1));
    let before = sim.requests().len();
    let err = client.next_id().await.unwrap_err();
    assert!(matches!(err, PveError::Transient { .. }), "{err}");
    assert!(err.to_string().contains("fingerprint mismatch"), "{err}");
    // The system roots do not trust a self-signed certificate either.
    let roots = PveClient::new(&sim.endpoint(), &PveSim::token(), &TlsTrust::SystemRoots)
        .unwrap()
        .with_retry_delay(Duration::from_millis(1));
    assert!(roots.next_id().await.is_err());
    assert_eq!(sim.requests().len(), before, "nothing reached the server");
}

#[tokio::test]
async fn parameter_errors_name_each_parameter() {
    let sim = PveSim::start().await;
    let form = Form::new()
        .int("newid", 300u32)
        .text("full", "true")
        .text("colour", "blue");
    let err = sim
        .client()
        .post::<String>(&base().path("/clone"), form)
        .await
        .unwrap_err();
    let PveError::Parameter { status, errors, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(*status, 400);
    assert_eq!(errors["full"], "type check ('boolean') failed - got 'true'");
    assert!(errors["colour"].contains("not defined in schema"), "{err}");
    assert!(err.to_string().contains("full: type check"), "{err}");
    assert!(!sim.client().vmid_is_free(BASE_VMID).await.unwrap());
}

#[tokio::test]
async fn missing_vms_are_not_found_with_or_without_the_message_field() {
    let sim = PveSim::start().await;
    let gone = VmRef {
        node: NODE.into(),
        vmid: 4242,
    };
    for legacy in [false, true] {
        sim.faults(|f| f.legacy_errors = legacy);
        let err = sim.client().vm_config(&gone).await.unwrap_err();
        assert!(
            matches!(err, PveError::NotFound { status: 500, .. }),
            "{err}"
        );
        assert_eq!(
            err.message(),
            "Configuration file 'nodes/pve1/qemu-server/4242.conf' does not exist"
        );
    }
}

#[tokio::test]
async fn locks_and_lock_timeouts_are_locked_errors() {
    let sim = PveSim::start().await;
    let mut vm = sim.vm(BASE_VMID).unwrap();
    vm.lock = Some("backup".into());
    vm.config.remove("template");
    sim.insert_vm(150, vm);
    let locked = VmRef {
        node: NODE.into(),
        vmid: 150,
    };
    let change = ConfigChange {
        cores: Some(4),
        ..Default::default()
    };
    let err = sim
        .client()
        .set_config(&locked, change.to_form())
        .await
        .unwrap_err();
    assert!(err.is_locked(), "{err}");
    assert!(err.to_string().contains("VM is locked (backup)"), "{err}");
    sim.faults(|f| f.lock_timeout_next_config = true);
    let err = sim
        .client()
        .set_config(&base(), change.to_form())
        .await
        .unwrap_err();
    assert!(err.is_locked(), "{err}");
    assert!(err.to_string().contains("got timeout"), "{err}");
}

#[tokio::test]
async fn gets_are_retried_on_503_and_posts_are_not() {
    let sim = PveSim::start().await;
    sim.faults(|f| f.unavailable_gets = 2);
    assert_eq!(sim.client().next_id().await.unwrap(), 100);
    assert_eq!(sim.count("GET", "/cluster/nextid"), 3);
    sim.faults(|f| f.unavailable_gets = 100);
    let err = sim.client().next_id().await.unwrap_err();
    assert!(
        matches!(
            err,
            PveError::Transient {
                status: Some(503),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(sim.count("GET", "/cluster/nextid"), 3 + 4);
    // A POST that the server answered is never sent again.
    sim.faults(|f| f.lock_timeout_next_config = true);
    let _ = sim.client().set_config(&base(), Form::new()).await;
    assert_eq!(sim.count("POST", "/qemu/9000/config"), 1);
}

#[tokio::test]
async fn values_reach_proxmox_exactly() {
    let sim = PveSim::start().await;
    let keys = vec![
        "ssh-ed25519 AAAAC3Nza+C1/lZDI1NTE5= me@laptop".to_string(),
        "ssh-rsa AAAAB3 ci".to_string(),
    ];
    let description = "a=b; c&d + e\nsecond line";
    let change = ConfigChange {
        sshkeys: Some(keys.clone()),
        tags: Some(vec!["oxbake".into(), "Role-Web".into()]),
        description: Some(description.into()),
        ipconfig0: Some("ip=10.0.0.5/24,gw=10.0.0.1".into()),
        ciupgrade: Some(false),
        ..Default::default()
    };
    let client = sim.client();
    let upid = client.set_config(&base(), change.to_form()).await.unwrap();
    client.finish(upid, Duration::from_secs(5)).await.unwrap();
    let body = sim
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.path.ends_with("/config"))
        .unwrap()
        .body;
    assert!(
        body.contains("sshkeys=ssh%252Ded25519%2520AAAAC3Nza%252BC1%252FlZDI1NTE5%253D"),
        "{body}"
    );
    assert!(body.contains("ciupgrade=0"), "{body}");
    let config = client.vm_config(&base()).await.unwrap();
    assert_eq!(config.get("description").as_deref(), Some(description));
    assert_eq!(config.get("tags").as_deref(), Some("oxbake;role-web"));
    assert_eq!(
        config.get("ipconfig0").as_deref(),
        Some("ip=10.0.0.5/24,gw=10.0.0.1")
    );
    assert_eq!(decode_sshkeys(&config.get("sshkeys").unwrap()), keys);
    // memory arrives as a string, cores as a number: both read.
    assert_eq!(config.get("memory").as_deref(), Some("1024"));
    assert_eq!(config.get("cores").as_deref(), Some("1"));
}

#[tokio::test]
async fn a_failed_task_reports_its_exit_status() {
    let sim = PveSim::start().await;
    sim.faults(|f| f.fail_next_clone = Some("no space left on device".into()));
    let req = oxbake::target::proxmox::CloneRequest {
        newid: 300,
        full: false,
        ..Default::default()
    };
    let client = sim.client();
    let upid = client.clone_vm(&base(), &req).await.unwrap();
    let parsed: oxbake::target::proxmox::Upid = upid.parse().unwrap();
    assert_eq!(
        (parsed.kind.as_str(), parsed.id.as_str()),
        ("qmclone", "9000")
    );
    let err = client
        .wait_task(&parsed, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("proxmox task `{upid}` failed: clone failed: no space left on device")
    );
    assert!(sim.requests().iter().any(|r| r.body.contains("full=0")));
}

#[tokio::test]
async fn isos_upload_list_and_delete() {
    let sim = PveSim::start().await;
    let client = sim.client();
    let bytes = b"CD001 fake iso\r\n--not-a-boundary".to_vec();
    let upid = client
        .upload_iso(NODE, "local", "x.iso", &bytes)
        .await
        .unwrap();
    client.finish(upid, Duration::from_secs(5)).await.unwrap();
    assert_eq!(sim.volumes(), [("local:iso/x.iso".to_string(), bytes)]);
    assert_eq!(
        client.list_volumes(NODE, "local", "iso").await.unwrap(),
        ["local:iso/x.iso"]
    );
    let upid = client
        .delete_volume(NODE, "local", "local:iso/x.iso")
        .await
        .unwrap();
    client.finish(upid, Duration::from_secs(5)).await.unwrap();
    assert!(sim.volumes().is_empty());
    let err = client
        .upload_iso(NODE, "local-lvm", "x.iso", b"x")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not support content type 'iso'"),
        "{err}"
    );
}

#[tokio::test]
async fn a_vm_goes_from_base_to_template_and_leaves_nothing_behind() {
    let sim = PveSim::start().await;
    let (route, seen) = fake_sshd().await;
    let t = sim.target(Progress::silent()).with_ssh_route(route);
    let vm = t.create_vm(&spec("web-build", Source::Base)).await.unwrap();
    let id = vmid(&vm);
    assert_eq!(vm.id, format!("{NODE}/{id}"));
    assert!((200..=299).contains(&id));
    let c = sim.vm(id).unwrap().config;
    assert_eq!(c["name"], "web-build");
    assert_eq!(c["tags"], "kind-builder;oxbake;role-web;run-run-7");
    assert_eq!(c["cores"], "2");
    assert_eq!(c["scsi0"], format!("local-lvm:vm-{id}-disk-0,size=10G"));
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
    let tpl = t
        .make_template_with_meta(&vm, "web-1.4.0", &meta)
        .await
        .unwrap();
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
    let err = t.destroy_template(&tpl).await.unwrap_err();
    assert!(matches!(err, TargetError::TemplateInUse { .. }), "{err}");
    let listed = t.list_vms().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].labels.as_ref().unwrap().run_id, "Run-7");
    t.destroy(&child).await.unwrap();
    t.destroy_template(&tpl).await.unwrap();
    assert_eq!(sim.vmids(), [BASE_VMID]);
    assert!(sim.volumes().is_empty());
    t.destroy(&child).await.unwrap();
}

#[tokio::test]
async fn a_guest_that_ignores_shutdown_is_stopped() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let vm = t.create_vm(&spec("stubborn", Source::Base)).await.unwrap();
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
async fn a_failed_clone_leaves_no_vm() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    sim.faults(|f| f.fail_next_clone = Some("storage full".into()));
    let err = t
        .create_vm(&spec("web-build", Source::Base))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("clone failed: storage full"),
        "{err}"
    );
    assert!(matches!(
        err,
        TargetError::Proxmox(PveError::TaskFailed { .. })
    ));
    assert_eq!(sim.vmids(), [BASE_VMID]);
}

#[tokio::test]
async fn a_lock_timeout_while_configuring_leaves_no_vm() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    sim.faults(|f| f.lock_timeout_next_config = true);
    let err = t
        .create_vm(&spec("web-build", Source::Base))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TargetError::Proxmox(e) if e.is_locked()),
        "{err}"
    );
    assert_eq!(sim.vmids(), [BASE_VMID]);
}

#[tokio::test]
async fn an_agent_that_never_answers_times_out() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let vm = t.create_vm(&spec("web-build", Source::Base)).await.unwrap();
    t.start(&vm).await.unwrap();
    sim.faults(|f| f.agent_never = true);
    let err = t
        .ssh_endpoint(&vm, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vm `web-build`: an address from the guest agent did not happen within 2 s"
    );
    t.destroy(&vm).await.unwrap();
    assert_eq!(sim.vmids(), [BASE_VMID]);
}

#[tokio::test]
async fn a_failed_conversion_is_reported_and_destroy_cleans_up() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let vm = t.create_vm(&spec("web-build", Source::Base)).await.unwrap();
    t.set_cloud_init(&vm, &seed()).await.unwrap();
    sim.faults(|f| f.fail_convert = true);
    let err = t.make_template(&vm, "web-1.0.0").await.unwrap_err();
    assert!(
        matches!(
            &err,
            TargetError::Proxmox(PveError::Server { status: 500, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("storage error"), "{err}");
    assert!(!sim.vm(vmid(&vm)).unwrap().is_template());
    assert!(sim.volumes().is_empty());
    let renamed = VmHandle {
        name: "web-1.0.0".into(),
        id: vm.id.clone(),
    };
    t.destroy(&renamed).await.unwrap();
    assert_eq!(sim.vmids(), [BASE_VMID]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn parallel_creates_never_share_a_vmid() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let tasks: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| {
            let t = t.clone();
            tokio::spawn(async move { t.create_vm(&spec(name, Source::Base)).await })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(vmid(&task.await.unwrap().unwrap()));
    }
    ids.sort();
    assert_eq!(ids, [200, 201, 202]);
    assert_eq!(sim.count("POST", "/qemu/9000/clone"), 3);
}

#[tokio::test]
async fn an_id_taken_by_another_client_is_skipped() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    sim.insert_vm(
        200,
        SimVm {
            node: NODE.into(),
            ..Default::default()
        },
    );
    sim.faults(|f| {
        f.hidden_vmids.insert(200);
    });
    let vm = t.create_vm(&spec("web", Source::Base)).await.unwrap();
    assert_eq!(vmid(&vm), 201);
    assert_eq!(sim.count("POST", "/qemu/9000/clone"), 2);
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
    let vm = t.create_vm(&spec("web", Source::Base)).await.unwrap();
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
