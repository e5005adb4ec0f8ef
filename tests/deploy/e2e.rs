//! End to end on the local target: the `lab` environment (backend, ui,
//! services) deploys from the dev channel; the ui VM serves HTTPS and
//! proxies /appsuite/api to the backend's address; a second deploy does
//! nothing; the operator's tools read it (`oxbake status`, `oxbake ssh`, and
//! `oxbake inventory` with the real `ansible-inventory` and `ansible -m
//! ping`); destroy leaves nothing. (Replacements, rolling and failed, are
//! in `ha_e2e`.) OpenSSH reaches the VMs with the host keys oxbake pinned
//! in `.oxbake/known_hosts/lab` (strict checking).

use std::path::Path;
use std::process::Command;

use oxbake::registry::Registry;

use super::SECRETS;
use super::monitoring::{
    LAB_MONITORING, Webhook, monitoring_sees_the_environment, target_down_fires,
};
use crate::support::e2e::{baked, env_ssh, self_signed, tls_key, vm_lock};
use crate::support::output::assert_success;
use crate::support::project::{Run, TestProject};
use crate::support::tools::folder_with;

const ROLES: [&str; 4] = ["backend", "monitoring", "services", "ui"];

#[test]
fn lab_deploys_serves_and_is_destroyed() {
    let baked = baked();
    let _vms = vm_lock();
    let project = &baked.project;
    let build = project.oxbake(&["build", "backend", "monitoring", "services", "--if-changed"]);
    assert_eq!(build.code(), 0, "{}", build.stderr());
    let original = project.read("oxbake.toml");
    let hook = Webhook::start();
    project.write("oxbake.toml", &lab_config(&original, project.root(), &hook));
    let registry = Registry::for_project(project.root());
    for role in ROLES {
        let latest = registry
            .latest(role, true)
            .unwrap()
            .expect("a baked version");
        registry
            .set_channel(role, "dev", &latest.version, "test", "e2e deploy")
            .unwrap();
    }
    let result = std::panic::catch_unwind(|| scenario(project, &hook));
    let destroy = deploy(project, &["destroy", "lab"]);
    project.write("oxbake.toml", &original);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert_eq!(destroy.code(), 0, "{}", destroy.stderr());
    assert_eq!(lab_vms(project.root()), Vec::<String>::new());
    assert_eq!(project.read(".oxbake/known_hosts/lab"), "");
}

fn scenario(project: &TestProject, hook: &Webhook) {
    let first = deploy(project, &["deploy", "lab", "--json"]);
    assert_eq!(first.code(), 0, "{}", first.stderr());
    let vms = lab_vms(project.root());
    assert_eq!(
        vms,
        [
            "lab-backend-1",
            "lab-monitoring-1",
            "lab-services-1",
            "lab-ui-1"
        ]
    );
    // status proves every VM healthy: before the monitoring VM's node
    // exporter is stopped, whose alert takes a minute; what needs no
    // health check runs in that minute.
    status_and_ssh(project);
    let stopped = monitoring_sees_the_environment(project.root(), &vms, hook);
    serve_probe_on_backend(project.root());
    assert_eq!(through_ui(project.root()), "backend-answered\n");

    let again = deploy(project, &["deploy", "lab"]);
    assert_eq!(again.code(), 0, "{}", again.stderr());
    assert_eq!(
        again.stdout(),
        "nothing to do: environment `lab` is up to date\n"
    );
    ansible_reads_the_inventory(project);
    target_down_fires(project.root(), hook, stopped);
}

/// `status` proves each VM healthy; `ssh` logs in by slot and runs a
/// command, and refuses a VM whose host key is not the pinned one.
fn status_and_ssh(project: &TestProject) {
    let status = deploy(project, &["status", "lab"]);
    assert_eq!(status.code(), 0, "{}", status.stderr());
    let rows: Vec<String> = status.stdout().lines().skip(1).map(str::to_owned).collect();
    assert_eq!(rows.len(), ROLES.len(), "{}", status.stdout());
    for row in &rows {
        assert!(
            row.contains(" running ") && row.ends_with(" healthy"),
            "{row}"
        );
        // AGE: made by this test's deploy, minutes ago at most.
        let age = row.split_whitespace().nth(5).unwrap();
        assert!(age.ends_with('s') || age.ends_with('m'), "{row}");
    }
    assert!(
        status.stdout().contains("10.99.0.20"),
        "{}",
        status.stdout()
    );

    let run = deploy(project, &["ssh", "lab", "lab-ui-1", "--", "hostname"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(run.stdout(), "lab-ui-1\n");
    let json = deploy(
        project,
        &["ssh", "lab", "lab-backend-1", "--json", "--", "exit 3"],
    );
    assert_eq!(json.code(), 1, "{}", json.stderr());
    let doc: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    assert_eq!(doc["exit"], 3, "{doc}");
    let unknown = deploy(project, &["ssh", "lab", "lab-db-1", "--", "true"]);
    assert_eq!(unknown.code(), 2, "{}", unknown.stderr());

    // Another VM's key in lab-ui-1's line: OpenSSH refuses, nothing runs.
    let file = project.root().join(".oxbake/known_hosts/lab");
    let pinned = std::fs::read_to_string(&file).unwrap();
    let key_of = |vm: &str| {
        let line = pinned
            .lines()
            .find(|l| l.ends_with(&format!(" {vm}")))
            .unwrap();
        line.split_whitespace().nth(2).unwrap().to_owned()
    };
    let swapped = pinned.replace(&key_of("lab-ui-1"), &key_of("lab-backend-1"));
    std::fs::write(&file, swapped).unwrap();
    let refused = deploy(project, &["ssh", "lab", "lab-ui-1", "--", "touch /tmp/ran"]);
    std::fs::write(&file, &pinned).unwrap();
    assert_eq!(refused.code(), 255, "{}", refused.stderr());
    assert!(
        refused.stderr().contains("Host key verification failed"),
        "{}",
        refused.stderr()
    );
    let ran = deploy(
        project,
        &["ssh", "lab", "lab-ui-1", "--", "test -e /tmp/ran"],
    );
    assert_eq!(ran.code(), 1, "a refused login ran its command");
}

/// The inventory as the real Ansible reads it: one group per role, the
/// host variables, and `ansible all -m ping` over the pinned host keys.
fn ansible_reads_the_inventory(project: &TestProject) {
    let inventory = deploy(project, &["inventory", "lab"]);
    assert_eq!(inventory.code(), 0, "{}", inventory.stderr());
    let listed = deploy(project, &["inventory", "lab", "--json"]);
    let ours: serde_json::Value = serde_json::from_str(&listed.stdout()).unwrap();
    let Some(bin) = folder_with(
        &["ansible", "ansible-inventory"],
        "OXBAKE_REQUIRE_ANSIBLE",
        "the inventory is not read by Ansible",
    ) else {
        return;
    };
    let file = project.root().join(".oxbake/lab-inventory.yml");
    std::fs::write(&file, inventory.stdout()).unwrap();
    let out = Command::new(bin.join("ansible-inventory"))
        .arg("-i")
        .arg(&file)
        .arg("--list")
        .output()
        .unwrap();
    assert_success(&out, "ansible-inventory --list");
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for group in ROLES {
        assert_eq!(
            read[group]["hosts"],
            serde_json::json!([format!("lab-{group}-1")]),
            "{read}"
        );
    }
    for vm in ROLES.map(|role| format!("lab-{role}-1")) {
        let vm = vm.as_str();
        let (theirs, mine) = (
            &read["_meta"]["hostvars"][vm],
            &ours["_meta"]["hostvars"][vm],
        );
        for (k, v) in mine.as_object().unwrap() {
            assert_eq!(&theirs[k], v, "{vm}: {k}");
        }
        assert_eq!(theirs["ansible_user"], "ops", "{theirs}");
    }
    let ping = Command::new(bin.join("ansible"))
        .args(["all", "-m", "ping", "-i"])
        .arg(&file)
        .env("ANSIBLE_PYTHON_INTERPRETER", "auto_silent")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&ping.stdout);
    assert!(
        ping.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&ping.stderr)
    );
    assert_eq!(said.matches("SUCCESS").count(), ROLES.len(), "{said}");
}

fn deploy(project: &TestProject, args: &[&str]) -> Run {
    let key = tls_key(project.root(), "lab");
    let mut env: Vec<(&str, &str)> = SECRETS[1..].to_vec();
    env.push((SECRETS[0].0, &key));
    let run = project.oxbake_env(args, &env);
    eprintln!("oxbake {}:\n{}", args.join(" "), run.stderr());
    run
}

/// The shipped `lab` environment with a monitoring VM (whose alerts go to
/// `hook`), a real certificate and smaller VMs.
fn lab_config(original: &str, root: &Path, hook: &Webhook) -> String {
    let cert = self_signed(root, "lab", "lab.example");
    let services = "[environments.lab.roles.services]\n";
    let mut text = original
        .replacen(services, &format!("{LAB_MONITORING}\n{services}"), 1)
        .replace(
            "tls_certificate = \"\"",
            &format!("tls_certificate = \"\"\"\n{}\"\"\"", cert),
        )
        .replacen(
            "alert_webhook_url = \"\"",
            &format!("alert_webhook_url = \"{}\"", hook.url()),
            1,
        );
    for role in ROLES {
        let header = format!("[environments.lab.roles.{role}]\n");
        text = text.replace(&header, &format!("{header}memory_mib = 1024\n"));
    }
    text
}

fn lab_vms(root: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(root.join(".oxbake/local/vms")) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("lab-"))
        .collect();
    names.sort();
    names
}

/// No OX packages here: a web server on the backend's connector port
/// answers the API path instead.
fn serve_probe_on_backend(root: &Path) {
    let script = "sudo mkdir -p /srv/probe/appsuite && \
        echo backend-answered | sudo tee /srv/probe/appsuite/api >/dev/null && \
        sudo systemd-run --unit=oxbake-probe --working-directory=/srv/probe \
        python3 -m http.server 8009";
    let out = ssh(root, "lab-backend-1", script);
    assert_success(&out, "the probe server on lab-backend-1");
    std::thread::sleep(std::time::Duration::from_secs(3));
}

fn ssh(root: &Path, vm: &str, script: &str) -> std::process::Output {
    env_ssh(root, "lab", vm, None, script)
}

/// GET /appsuite/api over HTTPS from the ui VM's forwarded port 443.
fn through_ui(root: &Path) -> String {
    let port = std::fs::read_to_string(root.join(".oxbake/local/nets/lab/10.99.0.20-443")).unwrap();
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "30"])
        .arg(format!("https://127.0.0.1:{}/appsuite/api", port.trim()))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
