//! The restore drill, end to end on the local target: an environment `dr`
//! (one db node and the backup VM, from the shipped recipes) deploys; known
//! rows are written into its database; `oxbake backup dr --now` takes a
//! snapshot, which the repository holds without a plaintext row; a restore
//! into the running cluster is refused; `oxbake destroy dr` keeps the
//! backup VM (its role keeps data); `oxbake deploy dr` makes a fresh db
//! node, `oxbake restore dr --from latest` brings every row back (counted
//! and summed). No secret reaches any output. `destroy --all` ends it.

use std::path::Path;

use oxbake::registry::Registry;

use crate::support::e2e::{baked, env_ssh, ssh_private_key, vm_lock, vm_names};
use crate::support::figures::figure;
use crate::support::project::{Run, TestProject};

const ROLES: [&str; 2] = ["db", "backup"];
const ROWS: u32 = 500;
const DB_PASSWORD: &str = "db-pw-dr-7c1e-secret";
const SST_PASSWORD: &str = "sst-pw-dr-2a9f-secret";
const BACKUP_PASSWORD: &str = "restic-pw-dr-41d0-secret";

/// The environment the drill adds to the project.
const DR: &str = r#"
[environments.dr]
channel = "dev"
user = "ops"
ssh_keys = []

[environments.dr.network]
prefix = 24
gateway = "10.97.0.1"
dns = ["10.97.0.3"]
domain = "dr.example"

[environments.dr.roles.db]
addresses = ["10.97.0.41"]
memory_mib = 1024

[environments.dr.roles.db.values]
backup_repository = ""

[environments.dr.roles.backup]
addresses = ["10.97.0.61"]
memory_mib = 512
"#;

/// The drill's secrets: passwords and two fresh keys.
struct Secrets {
    ssh_key: String,
    host_key: String,
}

impl Secrets {
    fn make(root: &Path) -> Secrets {
        Secrets {
            ssh_key: ssh_private_key(root, "dr-backup-ssh"),
            host_key: ssh_private_key(root, "dr-backup-host"),
        }
    }

    /// Every secret's value, or a part of a key long enough to be its own.
    fn values(&self) -> Vec<String> {
        let body = |k: &str| k.lines().nth(2).unwrap_or_default().to_owned();
        vec![
            DB_PASSWORD.into(),
            SST_PASSWORD.into(),
            BACKUP_PASSWORD.into(),
            body(&self.ssh_key),
            body(&self.host_key),
        ]
    }
}

fn oxbake(project: &TestProject, secrets: &Secrets, args: &[&str]) -> Run {
    let env = [
        ("OXBAKE_SECRET_DB_PASSWORD", DB_PASSWORD),
        ("OXBAKE_SECRET_SST_PASSWORD", SST_PASSWORD),
        ("OXBAKE_SECRET_BACKUP_PASSWORD", BACKUP_PASSWORD),
        ("OXBAKE_SECRET_BACKUP_SSH_KEY", secrets.ssh_key.as_str()),
        ("OXBAKE_SECRET_BACKUP_HOST_KEY", secrets.host_key.as_str()),
    ];
    let run = project.oxbake_env(args, &env);
    eprintln!("oxbake {}:\n{}", args.join(" "), run.stderr());
    for value in secrets.values() {
        assert!(
            !run.stdout().contains(&value) && !run.stderr().contains(&value),
            "oxbake {} showed a secret",
            args.join(" ")
        );
    }
    run
}

fn ssh(root: &Path, vm: &str, script: &str) -> String {
    let out = env_ssh(root, "dr", vm, None, script);
    assert!(
        out.status.success(),
        "{vm}: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `rows=N sum=N` of the drill's table on dr-db-1.
fn rows(root: &Path) -> String {
    ssh(
        root,
        "dr-db-1",
        "sudo mariadb -N -B -e \"SELECT CONCAT('rows=', COUNT(*), ' sum=', SUM(id)) FROM drill.t\"",
    )
    .trim()
    .to_owned()
}

#[test]
fn a_backup_survives_destroy_and_restores_every_row() {
    let baked = baked();
    let _vms = vm_lock();
    let project = &baked.project;
    let build = project.oxbake(&["build", "db", "backup", "--if-changed"]);
    assert_eq!(build.code(), 0, "{}", build.stderr());
    let registry = Registry::for_project(project.root());
    for role in ROLES {
        let latest = registry.latest(role, true).unwrap().expect("baked");
        registry
            .set_channel(role, "dev", &latest.version, "test", "e2e restore drill")
            .unwrap();
    }
    let original = project.read("oxbake.toml");
    project.write("oxbake.toml", &format!("{original}{DR}"));
    let secrets = Secrets::make(project.root());
    let started = std::time::Instant::now();
    let result = std::panic::catch_unwind(|| drill(project, &secrets));
    let destroy = oxbake(project, &secrets, &["destroy", "dr", "--all"]);
    project.write("oxbake.toml", &original);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert_eq!(destroy.code(), 0, "{}", destroy.stderr());
    let left: Vec<String> = vm_names(project.root())
        .into_iter()
        .filter(|n| n.starts_with("dr-"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    figure(format!(
        "restore drill: deploy, {ROWS} rows, backup, destroy, deploy, restore took {:.0} s",
        started.elapsed().as_secs_f64()
    ));
}

fn drill(project: &TestProject, secrets: &Secrets) {
    let root = project.root();
    let first = oxbake(project, secrets, &["deploy", "dr"]);
    assert_eq!(first.code(), 0, "{}", first.stderr());
    let write = format!(
        "sudo mariadb -e \"CREATE DATABASE drill; USE drill; CREATE TABLE t (id INT PRIMARY KEY, \
         v VARCHAR(64)); INSERT INTO t SELECT seq, CONCAT('drill-row-', seq, \
         '-plaintext') FROM seq_1_to_{ROWS}\""
    );
    ssh(root, "dr-db-1", &write);
    let expected = format!("rows={ROWS} sum={}", ROWS * (ROWS + 1) / 2);
    assert_eq!(rows(root), expected);

    // None yet; then one, taken now.
    let none = oxbake(project, secrets, &["backup", "dr"]);
    assert_eq!(none.code(), 0, "{}", none.stderr());
    assert!(
        none.stdout().contains("has no backup yet"),
        "{}",
        none.stdout()
    );
    let took = std::time::Instant::now();
    let now = oxbake(project, secrets, &["backup", "dr", "--now", "--json"]);
    assert_eq!(now.code(), 0, "{}", now.stderr());
    let doc: serde_json::Value = serde_json::from_str(&now.stdout()).unwrap();
    let snapshots = doc["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "{doc}");
    assert_eq!(doc["taken"], snapshots[0]["id"], "{doc}");
    figure(format!(
        "restore drill: `oxbake backup dr --now` took {:.0} s",
        took.elapsed().as_secs_f64()
    ));
    // The age the monitoring reads, from the node exporter.
    let metrics = ssh(
        root,
        "dr-db-1",
        "curl -s http://127.0.0.1:9100/metrics | grep '^oxbake_backup_'",
    );
    assert!(
        metrics.contains("oxbake_backup_last_success_timestamp_seconds ")
            && metrics.contains("oxbake_backup_max_age_seconds 93600"),
        "{metrics}"
    );
    // Encrypted at the repository: no row's text there.
    let grep = ssh(
        root,
        "dr-backup-1",
        "sudo du -sk /srv/backup/restic; sudo grep -rc 'drill-row-' /srv/backup/restic | grep -v ':0$' | wc -l",
    );
    let found: u32 = grep.lines().last().unwrap().trim().parse().unwrap();
    assert_eq!(found, 0, "plaintext rows in the repository: {grep}");

    // The running cluster holds the drill's table: refused, nothing done.
    let refused = oxbake(project, secrets, &["restore", "dr", "--from", "latest"]);
    assert_eq!(refused.code(), 1, "{}", refused.stderr());
    assert!(
        refused.stderr().contains("holds 1 table(s)"),
        "{}",
        refused.stderr()
    );
    let bad = oxbake(project, secrets, &["restore", "dr", "--from", "x;reboot"]);
    assert_eq!(bad.code(), 2, "{}", bad.stderr());
    assert_eq!(rows(root), expected);

    // Destroy keeps the backup VM; a fresh db node has no drill table.
    let destroy = oxbake(project, secrets, &["destroy", "dr"]);
    assert_eq!(destroy.code(), 0, "{}", destroy.stderr());
    assert!(
        destroy.stdout().contains("destroyed dr-db-1\n")
            && destroy
                .stdout()
                .contains("kept dr-backup-1: its role keeps data"),
        "{}",
        destroy.stdout()
    );
    let again = oxbake(project, secrets, &["deploy", "dr"]);
    assert_eq!(again.code(), 0, "{}", again.stderr());
    let fresh = ssh(
        root,
        "dr-db-1",
        "sudo mariadb -N -B -e \"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'drill'\"",
    );
    assert_eq!(fresh.trim(), "0");

    let listed = oxbake(project, secrets, &["backup", "dr"]);
    assert_eq!(listed.code(), 0, "{}", listed.stderr());
    let short = snapshots[0]["short_id"].as_str().unwrap();
    assert!(listed.stdout().contains(short), "{}", listed.stdout());
    // A snapshot the repository does not hold: refused, nothing changes.
    let unknown = oxbake(project, secrets, &["restore", "dr", "--from", "0123abcd"]);
    assert_eq!(unknown.code(), 2, "{}", unknown.stderr());
    assert!(
        unknown.stderr().contains("no snapshot `0123abcd`"),
        "{}",
        unknown.stderr()
    );
    let restored = oxbake(project, secrets, &["restore", "dr", "--from", "latest"]);
    assert_eq!(restored.code(), 0, "{}", restored.stderr());
    assert!(
        restored
            .stdout()
            .contains(&format!("from snapshot {short}")),
        "{}",
        restored.stdout()
    );
    assert_eq!(rows(root), expected);
    let record = project.read(".oxbake/restores/dr.jsonl");
    let last: serde_json::Value = serde_json::from_str(record.lines().last().unwrap()).unwrap();
    assert_eq!(last["from"], "latest", "{record}");
    assert_eq!(last["snapshot"], snapshots[0]["id"], "{record}");
    assert_eq!(last["forced"], false, "{record}");
    // The restored node serves as a deployed one: its checks pass.
    let status = oxbake(project, secrets, &["status", "dr"]);
    assert_eq!(status.code(), 0, "{}", status.stdout());
}
