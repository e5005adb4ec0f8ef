//! The `lab` environment's monitoring VM, end to end (called from the lab
//! deploy e2e, on its VMs): Prometheus's API lists every VM of the
//! environment as a target with its labels, all up; the exporters answer
//! the monitoring VM only; the certificate that expires within 14 days
//! fires its alert; a stopped exporter fires `TargetDown` in
//! Alertmanager's API and reaches the webhook receiver (a listener here,
//! at the host address of the VM's user-mode NIC).

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::e2e::env_ssh;
use crate::support::figures::figure;

/// The monitoring VM's address in `lab` with [`LAB_MONITORING`].
const MONITORING: &str = "10.99.0.40";

/// Its VM name.
const MONITORING_VM: &str = "lab-monitoring-1";

/// What the test adds to the shipped `lab` (which has no monitoring VM):
/// prod's monitoring, on lab's addresses, probing the ui.
pub const LAB_MONITORING: &str = r#"[environments.lab.roles.monitoring]
addresses = ["10.99.0.40"]
ports = [9090, 9093]

[environments.lab.roles.monitoring.values]
# The ui's HTTPS, verified for the public name against the certificate.
probe_url = "https://10.99.0.20/"
public_name = "lab.example"
tls_certificate = ""
alert_webhook_url = ""
alert_email_to = ""
"#;

/// A webhook receiver on the host: every request body it is sent.
pub struct Webhook {
    pub port: u16,
    bodies: mpsc::Receiver<String>,
}

impl Webhook {
    pub fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (send, bodies) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let _ = std::io::Write::write_all(
                    &mut stream,
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                );
                if send
                    .send(String::from_utf8_lossy(&body).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        });
        Webhook { port, bodies }
    }

    /// The URL the monitoring VM reaches this receiver at: QEMU's user-mode
    /// network relays its gateway to the host's loopback.
    pub fn url(&self) -> String {
        format!("http://10.0.2.2:{}/alerts", self.port)
    }

    /// Drops what was received so far.
    fn forget(&self) {
        while self.bodies.try_recv().is_ok() {}
    }

    fn wait_for(&self, what: impl Fn(&serde_json::Value) -> bool, within: Duration) -> bool {
        let end = Instant::now() + within;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            let Ok(body) = self.bodies.recv_timeout(left) else {
                return false;
            };
            if serde_json::from_str(&body).is_ok_and(|doc| what(&doc)) {
                return true;
            }
        }
        false
    }
}

/// GET `path` from the monitoring VM's forwarded `port`, as JSON.
fn api(root: &Path, port: u16, path: &str) -> serde_json::Value {
    let file = root.join(format!(".oxbake/local/nets/lab/{MONITORING}-{port}"));
    let local = std::fs::read_to_string(file).unwrap();
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10", "-g"])
        .arg(format!("http://127.0.0.1:{}{path}", local.trim()))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

/// Polls until `ok` holds for what `get` returns, or panics with the last
/// answer after `within`; the time it took.
fn until(
    what: &str,
    within: Duration,
    get: impl Fn() -> serde_json::Value,
    ok: impl Fn(&serde_json::Value) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let doc = get();
        if ok(&doc) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{what} within {within:?}: {doc:#}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn firing(alerts: &serde_json::Value, name: &str, vm: Option<&str>) -> bool {
    alerts.as_array().is_some_and(|list| {
        list.iter().any(|a| {
            a["labels"]["alertname"] == name
                && a["status"]["state"] == "active"
                && vm.is_none_or(|vm| a["labels"]["vm"] == vm)
        })
    })
}

/// The checks above up to the exporter's stop, on the deployed `lab` (VMs
/// `vms`, versions as the dev channel has them); returns when the
/// monitoring VM's node exporter was stopped. The alert takes the rule's
/// minute: the caller does other work meanwhile, then [`target_down_fires`].
pub fn monitoring_sees_the_environment(root: &Path, vms: &[String], hook: &Webhook) -> Instant {
    let targets = || api(root, 9090, "/api/v1/targets?state=active");
    let vm_count = vms.len();
    // node on every VM, nginx on the ui, mysqld on the backend (lab has no
    // db role: the backend's MariaDB serves), Prometheus, Alertmanager,
    // blackbox and the HTTPS probe.
    let expected = vm_count + 1 + 1 + 4;
    let all_up = until(
        "every target up",
        Duration::from_secs(180),
        targets,
        |doc| {
            let active = doc["data"]["activeTargets"].as_array();
            active.is_some_and(|t| t.len() == expected && t.iter().all(|t| t["health"] == "up"))
        },
    );
    figure(format!(
        "monitoring: {expected} targets of {vm_count} VMs all up {:.0} s after the deploy",
        all_up.as_secs_f64()
    ));
    let doc = targets();
    let active = doc["data"]["activeTargets"].as_array().unwrap();
    let mut nodes: Vec<(String, String)> = active
        .iter()
        .filter(|t| t["labels"]["job"] == "node")
        .map(|t| {
            let l = &t["labels"];
            assert_eq!(l["environment"], "lab", "{t:#}");
            let image = format!(
                "{}@{}",
                l["role"].as_str().unwrap(),
                l["version"].as_str().unwrap()
            );
            assert_eq!(l["image"], image.as_str(), "{t:#}");
            (
                l["vm"].as_str().unwrap().to_owned(),
                t["scrapeUrl"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    nodes.sort();
    let names: Vec<&str> = nodes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vms.iter().map(String::as_str).collect::<Vec<_>>());

    // Another VM of the environment does not reach an exporter: the
    // firewall opens it to the monitoring VM only.
    let from_backend = env_ssh(
        root,
        "lab",
        "lab-backend-1",
        None,
        "curl -s -o /dev/null -m 5 http://10.99.0.20:9100/metrics; echo exit=$?; curl -sk -o /dev/null -m 5 -w '%{http_code}' https://10.99.0.20/",
    );
    let said = String::from_utf8_lossy(&from_backend.stdout);
    assert!(said.starts_with("exit=28\n"), "{said}");
    assert!(said.ends_with("302"), "HTTPS stays open to all: {said}");

    // The test certificate is valid for 2 days: the probe verifies it and
    // the expiry alert fires at once.
    let alerts = || api(root, 9093, "/api/v2/alerts");
    until(
        "CertificateExpiresSoon firing",
        Duration::from_secs(120),
        alerts,
        |a| firing(a, "CertificateExpiresSoon", None),
    );
    let probe = api(
        root,
        9090,
        "/api/v1/query?query=probe_success{job=\"https\"}",
    );
    assert_eq!(probe["data"]["result"][0]["value"][1], "1", "{probe:#}");
    let mysql = api(
        root,
        9090,
        "/api/v1/query?query=mysql_up{vm=\"lab-backend-1\"}",
    );
    assert_eq!(mysql["data"]["result"][0]["value"][1], "1", "{mysql:#}");

    // A stopped exporter: TargetDown for that VM, in Alertmanager and at
    // the receiver. The monitoring VM's own node exporter: the deploy cannot
    // have raised its alert (Prometheus scrapes it from the VM itself as
    // soon as both run), so no wait for the deploy's alerts to clear; that
    // none is active before the stop is still checked, and the alert must
    // take the rule's minute: it is the stop's.
    let vm = MONITORING_VM;
    until(
        &format!("no TargetDown for {vm} before its exporter stops"),
        Duration::from_secs(120),
        alerts,
        |a| a.is_array() && !firing(a, "TargetDown", Some(vm)),
    );
    hook.forget();
    node_exporter(root, vm, "stop");
    Instant::now()
}

/// After [`monitoring_sees_the_environment`] stopped the monitoring VM's
/// node exporter at `stopped`: `TargetDown` for that VM fires in
/// Alertmanager, not before the rule's minute, and reaches the receiver;
/// the exporter is started again.
pub fn target_down_fires(root: &Path, hook: &Webhook, stopped: Instant) {
    let vm = MONITORING_VM;
    let alerts = || api(root, 9093, "/api/v2/alerts");
    until(
        &format!("TargetDown for {vm} firing"),
        Duration::from_secs(240),
        alerts,
        |a| firing(a, "TargetDown", Some(vm)),
    );
    let fired = stopped.elapsed();
    assert!(fired >= Duration::from_secs(60), "fired after {fired:?}");
    let received = hook.wait_for(
        |doc| {
            doc["alerts"].as_array().is_some_and(|list| {
                list.iter().any(|a| {
                    a["labels"]["alertname"] == "TargetDown"
                        && a["labels"]["vm"] == vm
                        && a["status"] == "firing"
                })
            })
        },
        Duration::from_secs(120),
    );
    assert!(received, "the webhook receiver got no TargetDown for {vm}");
    figure(format!(
        "monitoring: TargetDown for {vm} fired in Alertmanager {:.0} s after its node exporter stopped (rule: down for 1m, scrapes every 15 s); the webhook received it",
        fired.as_secs_f64(),
    ));
    node_exporter(root, vm, "start");
}

/// `systemctl ACTION` of `vm`'s node exporter.
fn node_exporter(root: &Path, vm: &str, action: &str) {
    let script = format!("sudo systemctl {action} prometheus-node-exporter");
    let out = env_ssh(root, "lab", vm, None, &script);
    assert!(
        out.status.success(),
        "{vm}: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
