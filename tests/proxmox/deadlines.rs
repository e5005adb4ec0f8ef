//! Waits are deadlines: `boot_timeout` and `task_timeout` bound the whole
//! wait, also against an API that hangs; the message says what was awaited
//! and what was seen. The agent's refused addresses are listed. Bounds
//! are measured with generous slack: these tests are about bounds, not
//! speed.

use std::time::Instant;

use serde_json::json;

use super::*;

/// Slack over a deadline before a wait counts as unbounded.
const SLACK: Duration = Duration::from_secs(5);

/// Fails the test (instead of hanging it) when `work` outlasts `limit`.
async fn bounded<T>(limit: Duration, work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, work)
        .await
        .unwrap_or_else(|_| panic!("the wait was still running after {limit:?}"))
}

/// A started builder VM on the simulator.
async fn started(t: &oxbake::target::proxmox::ProxmoxTarget) -> VmHandle {
    let vm = t
        .create_vm(&spec("web-build", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    t.start(&vm).await.unwrap();
    vm
}

#[tokio::test]
async fn a_boot_wait_ends_at_boot_timeout_against_a_frozen_api() {
    // Default request timeout (120 s): only the deadline can end the wait.
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let vm = started(&t).await;
    sim.faults(|f| f.frozen = true);
    let boot = Duration::from_secs(4);
    let start = Instant::now();
    let err = bounded(boot * 8, t.ssh_endpoint(&vm, boot))
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    assert!(elapsed < boot + SLACK, "took {elapsed:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "vm `web-build`: an address from the guest agent: no answer within 4s (boot_timeout)"
        ),
        "{text}"
    );
    assert!(!text.contains("operation timed out"), "{text}");
}

#[tokio::test]
async fn a_boot_wait_is_not_stretched_by_a_short_request_timeouts_retries() {
    // request_timeout 2 s with its four GET attempts would take 8 s; the
    // boot wait has 3 s.
    let sim = PveSim::start().await;
    let client = sim.client().with_request_timeout(Duration::from_secs(2));
    let t = oxbake::target::proxmox::ProxmoxTarget::new(client, sim.settings(), Progress::silent());
    let vm = started(&t).await;
    sim.faults(|f| f.frozen = true);
    let boot = Duration::from_secs(3);
    let start = Instant::now();
    let err = bounded(boot * 8, t.ssh_endpoint(&vm, boot))
        .await
        .unwrap_err();
    assert!(start.elapsed() < boot + SLACK, "took {:?}", start.elapsed());
    let text = err.to_string();
    assert!(
        text.contains("no answer within 3s (boot_timeout)"),
        "{text}"
    );
    assert!(
        text.contains("proxmox did not answer `GET /nodes/pve1/qemu/"),
        "{text}"
    );
}

#[tokio::test]
async fn a_task_wait_ends_at_task_timeout_when_the_status_request_hangs() {
    let sim = PveSim::start().await;
    let client = sim.client();
    sim.insert_vm(250, {
        let mut vm = sim.vm(BASE_VMID).unwrap();
        vm.config.remove("template");
        vm
    });
    // The task never ends, and asking for its status gets no answer.
    sim.faults(|f| {
        f.task_time = Duration::from_secs(3600);
        f.held_answers.push(pve_sim::HeldAnswer {
            method: "GET",
            suffix: "/status",
            after: None,
        });
    });
    let upid: String = client
        .post(&format!("/nodes/{NODE}/qemu/250/status/start"), Form::new())
        .await
        .unwrap();
    let within = Duration::from_secs(3);
    let start = Instant::now();
    let err = bounded(
        within * 10,
        client.finish(Some(upid.parse().unwrap()), within),
    )
    .await
    .unwrap_err();
    assert!(
        start.elapsed() < within + SLACK,
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(
        err.to_string(),
        format!("proxmox task `{upid}`: no answer within 3s (task_timeout)")
    );

    // Answered but never ending: the last status is named.
    sim.faults(|f| f.held_answers.clear());
    let err = client
        .finish(Some(upid.parse().unwrap()), within)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "proxmox task `{upid}`: not ended within 3s (task_timeout); last seen: status `running`"
        )
    );
}

#[tokio::test]
async fn an_agent_without_a_usable_address_is_reported_with_what_it_said() {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let vm = started(&t).await;
    let mac = sim.vm(vmid(&vm)).unwrap().net0_mac().unwrap();
    sim.faults(|f| {
        f.agent_warmup_calls = 0;
        f.agent_reports = Some(json!([
            {"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [
                {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8}]},
            {"name": "eth0", "hardware-address": mac.to_lowercase(), "ip-addresses": [
                {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
                {"ip-address": "fe80::be24:11ff:fe00:1", "ip-address-type": "ipv6", "prefix": 64}]}
        ]));
    });
    let err = t
        .ssh_endpoint(&vm, Duration::from_secs(2))
        .await
        .unwrap_err();
    let mac = mac.to_lowercase();
    assert_eq!(
        err.to_string(),
        format!(
            "vm `web-build`: an address from the guest agent: no usable address within 2s \
             (boot_timeout); last seen: the guest agent reported \
             lo [00:00:00:00:00:00]: 127.0.0.1 (not net0's NIC {}); \
             eth0 [{mac}]: 127.0.0.1 loopback, fe80::be24:11ff:fe00:1 link-local",
            sim.vm(vmid(&vm)).unwrap().net0_mac().unwrap()
        )
    );
    t.destroy(&vm).await.unwrap();
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_the_token_stays_home() {
    let sim = PveSim::start().await;
    // A plain-HTTP listener that records every byte it gets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::<u8>::new()));
    let log = got.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut s, _)) = listener.accept().await {
            log.lock().unwrap().extend_from_slice(b"<connection>");
            let mut buf = vec![0u8; 4096];
            if let Ok(n) = s.read(&mut buf).await {
                log.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }
    });
    let location = format!("http://127.0.0.1:{port}/api2/json/cluster/nextid");
    sim.faults(|f| f.redirect_to = Some(location.clone()));
    let err = sim.client().next_id().await.unwrap_err();
    assert!(matches!(err, PveError::Redirected { .. }), "{err}");
    assert!(err.to_string().contains(&location), "{err}");
    assert!(
        err.to_string().contains("does not follow redirects"),
        "{err}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
    assert!(
        !got.contains(pve_sim::TOKEN_SECRET),
        "the token went over http: {got}"
    );
    assert!(got.is_empty(), "the redirect was followed: {got}");
}

fn test_data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[tokio::test]
async fn a_ca_file_with_the_servers_own_certificate_pins_it() {
    let sim = PveSim::start().await;
    let trust = TlsTrust::CaFile(test_data("pve-sim-cert.pem"));
    let client = PveClient::new(&sim.endpoint(), &PveSim::token(), &trust).unwrap();
    assert_eq!(client.next_id().await.unwrap(), 100);

    // Any other CA still refuses it, in words (no Rust names).
    let trust = TlsTrust::CaFile(test_data("pve-other-ca.pem"));
    let client = PveClient::new(&sim.endpoint(), &PveSim::token(), &trust)
        .unwrap()
        .with_retry_delay(Duration::from_millis(1));
    let before = sim.requests().len();
    let err = client.next_id().await.unwrap_err();
    assert!(matches!(err, PveError::Untrusted { .. }), "{err}");
    let text = err.to_string();
    // webpki refuses the self-signed (CA) certificate as a server's own.
    assert!(
        text.contains(
            "the server presents a CA certificate as its own: the certificate is not trusted"
        ),
        "{text}"
    );
    for debug in ["UnknownIssuer", "CaUsedAsEndEntity", "Other(", "{"] {
        assert!(!text.contains(debug), "{text}");
    }
    assert_eq!(sim.requests().len(), before, "nothing reached the server");
}
