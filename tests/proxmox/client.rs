//! The client: auth, TLS, error classes, encodings, tasks, ISOs.

use super::*;

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
    assert!(matches!(err, PveError::Untrusted { .. }), "{err}");
    assert!(err.to_string().contains("fingerprint mismatch"), "{err}");
    // The system roots do not trust a self-signed certificate either.
    let roots = PveClient::new(&sim.endpoint(), &PveSim::token(), &TlsTrust::SystemRoots)
        .unwrap()
        .with_retry_delay(Duration::from_millis(1));
    let err = roots.next_id().await.unwrap_err();
    assert!(matches!(err, PveError::Untrusted { .. }), "{err}");
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
    let parsed: oxbake::target::proxmox::Upid = upid.clone();
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
