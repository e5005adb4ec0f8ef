//! The monitoring role against the real programs: the alert rules load and
//! pass their own unit tests (`promtool test rules`), the deploy-time
//! Prometheus configuration rendered from the shipped `prod` environment
//! lists every VM once per exporter it runs and passes `promtool check
//! config`, Alertmanager's passes `amtool check-config` with and without
//! receivers, and the blackbox exporter accepts its probe module.

use std::path::Path;

use super::{Roles, assert_check, assert_success, run, stdout, write};

const RULES: &str = "/etc/prometheus/oxbake-rules.yml";

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn the_alert_rules_load_and_pass_their_tests() {
    let roles = Roles::load();
    let rules = repo("files/prometheus/oxbake-rules.yml");
    let out = run("promtool", &["check", "rules", &rules]);
    assert_success(&out, "promtool check rules");
    for check in roles.checks("monitoring", &format!("promtool check rules {RULES}")) {
        assert_check("monitoring", check, &stdout(&out));
    }
    let dir = tempfile::tempdir().unwrap();
    let tests = std::fs::read_to_string(repo("files/prometheus/oxbake-rules.test.yml")).unwrap();
    let tests = write(dir.path(), "rules.test.yml", &tests.replace(RULES, &rules));
    let out = run("promtool", &["test", "rules", tests.to_str().unwrap()]);
    assert_success(&out, "promtool test rules");
    let shipped = "promtool test rules /usr/share/oxbake/prometheus/oxbake-rules.test.yml";
    let checks = roles.checks("monitoring", shipped);
    assert_eq!(checks.len(), 1);
    assert_check("monitoring", checks[0], &stdout(&out));

    // A rule that never fires fails its test: the tests can fail.
    let broken = std::fs::read_to_string(&rules)
        .unwrap()
        .replace("expr: up == 0", "expr: up == 2");
    let broken = write(dir.path(), "broken-rules.yml", &broken);
    let tests = std::fs::read_to_string(&tests).unwrap();
    let tests = write(
        dir.path(),
        "broken.test.yml",
        &tests.replace(&rules, broken.to_str().unwrap()),
    );
    let out = run("promtool", &["test", "rules", tests.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", stdout(&out));
}

/// The scrape configuration of the shipped `prod`: each VM a node target,
/// the ui VMs nginx targets, the lb VMs HAProxy targets, each with its
/// labels; promtool accepts it.
#[test]
fn prometheus_accepts_the_configuration_rendered_from_prod() {
    let mut roles = Roles::load();
    roles.use_environment_roles("monitoring", "prod");
    let source = roles.deploy_source_for("monitoring", "/etc/prometheus/prometheus.yml");
    let text = roles.render_deploy("monitoring", &source);
    let doc: serde_json::Value = serde_yaml_ng::from_str(&text).unwrap();
    let targets = |job: &str| -> Vec<String> {
        let Some(job) = doc["scrape_configs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job_name"] == job)
        else {
            return vec![];
        };
        job["static_configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let vm = c["labels"]["vm"].as_str().unwrap_or("-");
                format!("{vm} {}", c["targets"][0].as_str().unwrap())
            })
            .collect()
    };
    let prod = &roles.project.config.environments["prod"];
    let vms: usize = prod
        .roles
        .values()
        .map(|r| r.get_ref().slot_addresses().count())
        .sum();
    let node = targets("node");
    assert_eq!(node.len(), vms, "{node:?}");
    assert!(
        node.contains(&"prod-db-3 10.98.0.43:9100".to_owned()),
        "{node:?}"
    );
    assert_eq!(
        targets("nginx"),
        ["prod-ui-1 10.98.0.21:9113", "prod-ui-2 10.98.0.22:9113"]
    );
    assert_eq!(
        targets("haproxy"),
        ["prod-lb-1 10.98.0.5:8405", "prod-lb-2 10.98.0.6:8405"]
    );
    // The probe is of the environment, not of a VM.
    assert_eq!(targets("https"), ["- https://10.20.0.4/"]);
    assert!(text.contains("image: \"lb@2026.11.25.1\""), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let rules = repo("files/prometheus/oxbake-rules.yml");
    let config = write(dir.path(), "prometheus.yml", &text.replace(RULES, &rules));
    let out = run("promtool", &["check", "config", config.to_str().unwrap()]);
    assert_success(&out, &format!("promtool check config:\n{text}"));
    assert!(stdout(&out).contains("SUCCESS"), "{}", stdout(&out));
}

/// Alertmanager's configuration with a webhook and mail through the
/// services VM, and with no receiver at all.
#[test]
fn alertmanager_accepts_its_configuration_with_and_without_receivers() {
    let dir = tempfile::tempdir().unwrap();
    let mut roles = Roles::load();
    roles.use_environment_roles("monitoring", "prod");
    let source = roles.deploy_source_for("monitoring", "/etc/prometheus/alertmanager.yml");
    let both = roles.render_deploy("monitoring", &source);
    assert!(both.contains("smarthost: \"10.98.0.31:25\""), "{both}");
    assert!(
        both.contains("url: \"https://hooks.example.org/alerts/dev\""),
        "{both}"
    );
    roles.set("monitoring", "env", "alert_webhook_url", "");
    roles.set("monitoring", "env", "alert_email_to", "");
    let none = roles.render_deploy("monitoring", &source);
    assert!(!none.contains("_configs"), "{none}");
    for (name, text) in [("both.yml", both), ("none.yml", none)] {
        let file = write(dir.path(), name, &text);
        let out = run("amtool", &["check-config", file.to_str().unwrap()]);
        assert_success(&out, &format!("amtool check-config {name}:\n{text}"));
        for check in roles.checks(
            "monitoring",
            "amtool check-config /etc/prometheus/alertmanager.yml",
        ) {
            assert_check("monitoring", check, &stdout(&out));
        }
    }
}

/// The blackbox exporter's module, with the environment's certificate as
/// the probe's CA and without one.
#[test]
fn the_blackbox_exporter_accepts_its_probe_module() {
    let dir = tempfile::tempdir().unwrap();
    let mut roles = Roles::load();
    let source = roles.deploy_source_for("monitoring", "/etc/prometheus/blackbox.yml");
    let ca = write(dir.path(), "probe-ca.pem", "unused by --config.check\n");
    for with_ca in [true, false] {
        if !with_ca {
            roles.set("monitoring", "env", "tls_certificate", "");
        }
        let text = roles.render_deploy("monitoring", &source);
        assert_eq!(text.contains("ca_file:"), with_ca, "{text}");
        assert!(text.contains("server_name: \"dev.example.org\""), "{text}");
        let text = text.replace("/etc/prometheus/probe-ca.pem", ca.to_str().unwrap());
        let file = write(dir.path(), "blackbox.yml", &text);
        let out = run(
            "prometheus-blackbox-exporter",
            &[
                "--config.check",
                &format!("--config.file={}", file.display()),
            ],
        );
        assert_success(&out, &format!("blackbox --config.check:\n{text}"));
    }
}
