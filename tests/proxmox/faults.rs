//! The target's error paths: each a typed error, nothing left behind.

use super::*;

#[tokio::test]
async fn a_failed_clone_leaves_no_vm() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    sim.faults(|f| f.fail_next_clone = Some("storage full".into()));
    let err = t
        .create_vm(&spec("web-build", Source::Base(Suite::Bookworm)))
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
        .create_vm(&spec("web-build", Source::Base(Suite::Bookworm)))
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
    let vm = t
        .create_vm(&spec("web-build", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    t.start(&vm).await.unwrap();
    sim.faults(|f| f.agent_never = true);
    let err = t
        .ssh_endpoint(&vm, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "vm `web-build`: an address from the guest agent: no answer within 2s (boot_timeout); \
         last seen: QEMU guest agent is not running"
    );
    t.destroy(&vm).await.unwrap();
    assert_eq!(sim.vmids(), [BASE_VMID]);
}

#[tokio::test]
async fn a_failed_conversion_is_reported_and_destroy_cleans_up() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let vm = t
        .create_vm(&spec("web-build", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    t.set_cloud_init(&vm, &seed()).await.unwrap();
    sim.faults(|f| f.fail_convert = true);
    let meta = TemplateMeta {
        role: "web".into(),
        version: "1.0.0".into(),
        inputs: "0".repeat(64),
        parent: None,
    };
    let err = t.make_template(&vm, "web-1.0.0", &meta).await.unwrap_err();
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
            tokio::spawn(async move {
                t.create_vm(&spec(name, Source::Base(Suite::Bookworm)))
                    .await
            })
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
    let vm = t
        .create_vm(&spec("web", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    assert_eq!(vmid(&vm), 201);
    assert_eq!(sim.count("POST", "/qemu/9000/clone"), 2);
}
