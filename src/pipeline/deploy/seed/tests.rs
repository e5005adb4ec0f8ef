use std::path::Path;

use super::*;
use crate::guest::ClientKey;

fn doc(data: &CloudInit) -> serde_json::Value {
    let body = data.user_data.strip_prefix("#cloud-config\n").unwrap();
    serde_json::from_str(body).unwrap()
}

/// oxbake's public line for the tests that do not log in.
const FIXED_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFixedKeyForTheHash oxbake";

/// An image whose record lists no packages.
static NO_PACKAGES: BTreeMap<String, String> = BTreeMap::new();

/// The seeds of the repository's own `lab` environment.
fn lab_maker<'a>(project: &'a Project, secrets: &'a Secrets, key_line: String) -> SeedMaker<'a> {
    SeedMaker {
        project,
        env_name: "lab",
        env: &project.config.environments["lab"],
        renderer: Renderer::new(&project.templates_dir()),
        secrets,
        key_line,
        hash_key: "unit-test-hash-key".into(),
        versions: [("ui".to_owned(), "2026.11.25.1".to_owned())].into(),
    }
}

/// Slot 1 of `role` in `lab` (`lab-ROLE-1`) on a bridge.
fn lab_place<'a>(
    role: &'a str,
    address: &str,
    packages: &'a BTreeMap<String, String>,
) -> VmPlace<'a> {
    VmPlace {
        role,
        slot: 1,
        hostname: format!("lab-{role}-1"),
        address: address.parse().unwrap(),
        version: "2026.11.25.1",
        packages,
        nics: VmNics::Bridged,
    }
}

/// The repository's own project: its `lab` environment and `ui` recipe.
#[test]
fn the_seed_carries_a_fresh_host_key_that_the_hash_leaves_out() {
    let project = Project::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut secrets = Secrets::default();
    secrets.insert("tls_private_key", "tls-key-unit-secret");
    let maker = lab_maker(
        &project,
        &secrets,
        ClientKey::generate().unwrap().public_line().unwrap(),
    );
    let role = crate::role::Role::resolve(&project, "ui").unwrap();
    let place = lab_place("ui", "10.99.0.30", &NO_PACKAGES);
    let (first_key, second_key) = (
        HostKeyPair::generate().unwrap(),
        HostKeyPair::generate().unwrap(),
    );
    let (first, first_hash) = maker.make(&role, &place, &first_key, false).unwrap();
    let (second, second_hash) = maker.make(&role, &place, &second_key, false).unwrap();
    assert_eq!(
        first_hash, second_hash,
        "the random host key must not change the hash"
    );
    assert_ne!(first.user_data, second.user_data);

    let user_data = doc(&first);
    let private = first_key.private_openssh().unwrap();
    assert_eq!(user_data["ssh_keys"]["ed25519_private"], private.as_str());
    assert_eq!(
        user_data["ssh_keys"]["ed25519_public"],
        first_key.public_line().unwrap().trim()
    );
    assert_eq!(user_data["ssh_deletekeys"], true);
    assert_eq!(user_data["ssh_genkeytypes"], serde_json::json!([]));

    // Neither the seed's nor the key's Debug shows the private key.
    let shown = format!("{first:?} {first_key:?}");
    let body: String = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!shown.contains(&body[..40]), "{shown}");
    assert!(!shown.contains("tls-key-unit-secret"), "{shown}");
}

/// The db recipe's first node runs `bootstrap_commands`, the others
/// `commands`; the hash is the same, so the next deploy keeps the VM.
#[test]
fn a_bootstrap_seed_runs_bootstrap_commands_under_the_hash_of_commands() {
    let project = Project::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut secrets = Secrets::default();
    secrets.insert("db_password", "db-unit-secret");
    secrets.insert("sst_password", "sst-unit-secret");
    backup_secrets(&mut secrets);
    let env = &project.config.environments["prod"];
    let maker = SeedMaker {
        env_name: "prod",
        env,
        ..lab_maker(&project, &secrets, FIXED_KEY.into())
    };
    let role = crate::role::Role::resolve(&project, "db").unwrap();
    let place = lab_place("db", "10.98.0.41", &NO_PACKAGES);
    let key = HostKeyPair::generate().unwrap();
    let (joins, join_hash) = maker.make(&role, &place, &key, false).unwrap();
    let (boots, boot_hash) = maker.make(&role, &place, &key, true).unwrap();
    assert_eq!(join_hash, boot_hash);
    let deploy = &role.recipe().deploy;
    // base's deploy commands (its firewall reload) run first in both.
    let base = &project.recipes["base"].recipe.deploy.commands;
    assert!(!base.is_empty());
    let after_base = |own: &[String]| serde_json::json!([base.as_slice(), own].concat());
    assert_eq!(doc(&joins)["runcmd"], after_base(&deploy.commands));
    assert_eq!(
        doc(&boots)["runcmd"],
        after_base(&deploy.bootstrap_commands)
    );
    assert_ne!(deploy.commands, deploy.bootstrap_commands);
}

fn network_of(nics: VmNics) -> (serde_json::Value, String) {
    let project = Project::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut secrets = Secrets::default();
    secrets.insert("tls_private_key", "tls-key-unit-secret");
    let maker = lab_maker(&project, &secrets, FIXED_KEY.into());
    let role = crate::role::Role::resolve(&project, "ui").unwrap();
    let place = VmPlace {
        nics,
        ..lab_place("ui", "10.99.0.30", &NO_PACKAGES)
    };
    let (seed, hash) = maker
        .make(&role, &place, &HostKeyPair::generate().unwrap(), false)
        .unwrap();
    let text = seed.network_config.unwrap();
    (serde_json::from_str(&text).unwrap(), hash)
}

/// Proxmox: one NIC on the bridge, the route through the gateway.
#[test]
fn a_bridged_vm_has_its_address_and_route_on_eth0() {
    let (doc, _) = network_of(VmNics::Bridged);
    assert_eq!(
        doc,
        serde_json::json!({ "version": 2, "ethernets": { "eth0": {
            "addresses": ["10.99.0.30/24"],
            "routes": [{ "to": "0.0.0.0/0", "via": "10.99.0.1" }],
            "nameservers": { "addresses": ["10.99.0.3"], "search": ["lab.example"] },
        }}})
    );
}

/// Local: the segment NIC holds the address without a route; the
/// management NIC takes DHCP (and with it the default route); both by MAC.
#[test]
fn a_vm_on_a_segment_has_its_address_on_eth0_and_dhcp_on_eth1() {
    let nics = VmNics::Segment {
        segment_mac: "52:54:00:aa:aa:aa".into(),
        management_mac: "52:54:00:bb:bb:bb".into(),
    };
    let (doc, hash) = network_of(nics.clone());
    assert_eq!(
        doc,
        serde_json::json!({ "version": 2, "ethernets": {
            "eth0": {
                "match": { "macaddress": "52:54:00:aa:aa:aa" },
                "set-name": "eth0",
                "addresses": ["10.99.0.30/24"],
                "nameservers": { "addresses": ["10.99.0.3"], "search": ["lab.example"] },
            },
            "eth1": {
                "match": { "macaddress": "52:54:00:bb:bb:bb" },
                "set-name": "eth1",
                "dhcp4": true,
            },
        }})
    );
    assert_eq!(hash, network_of(nics).1, "the hash is stable per target");
    assert_ne!(hash, network_of(VmNics::Bridged).1);
}

/// `env.roles` lists every role's addresses in this environment, in slot
/// order, and an empty list for a role the environment does not run.
#[test]
fn deploy_templates_read_every_roles_addresses_from_the_environment() {
    let project = Project::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let secrets = Secrets::default();
    let maker = lab_maker(&project, &secrets, FIXED_KEY.into());
    let role = crate::role::Role::resolve(&project, "ui").unwrap();
    let place = lab_place("ui", "10.99.0.20", &NO_PACKAGES);
    let context = maker.context(&role, &place);
    let jinja = minijinja::Environment::new();
    let text = jinja
        .render_str(
            "{% for r, p in env.roles|items %}{{ r }}={{ p.addresses|join(',') }};{% endfor %}\
             {{ env.backend_port }}",
            context,
        )
        .unwrap();
    assert_eq!(
        text,
        "backend=10.99.0.10;backup=;base=;db=;lb=;monitoring=;services=10.99.0.30;ui=10.99.0.20;8009"
    );
}

/// `image` is the version being deployed and its record's packages.
#[test]
fn deploy_templates_read_the_image_version_and_packages() {
    let project = Project::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let secrets = Secrets::default();
    let maker = lab_maker(&project, &secrets, FIXED_KEY.into());
    let role = crate::role::Role::resolve(&project, "backend").unwrap();
    let packages = BTreeMap::from([("open-xchange-core".to_owned(), "8.28.0-1".to_owned())]);
    let place = lab_place("backend", "10.99.0.10", &packages);
    let text = minijinja::Environment::new()
        .render_str(
            "{{ image.version }} {{ image.packages['open-xchange-core'] }} \
             {{ image.packages['nginx'] | default('none') }}",
            maker.context(&role, &place),
        )
        .unwrap();
    assert_eq!(text, "2026.11.25.1 8.28.0-1 none");
}

/// The file a seed writes to `path`.
fn written(data: &CloudInit, path: &str) -> String {
    let files = doc(data)["write_files"].as_array().unwrap().clone();
    let file = files.iter().find(|f| f["path"] == path);
    let file = file.unwrap_or_else(|| panic!("no {path} in {files:#?}"));
    file["content"].as_str().unwrap().to_owned()
}

fn prod_seed(maker: &SeedMaker<'_>, role: &str, slot: u32, address: &str) -> (CloudInit, String) {
    let resolved = crate::role::Role::resolve(maker.project, role).unwrap();
    let place = VmPlace {
        role,
        slot,
        hostname: vm_name("prod", role, slot as usize),
        address: address.parse().unwrap(),
        version: &maker.versions[role],
        packages: &NO_PACKAGES,
        nics: VmNics::Bridged,
    };
    let key = HostKeyPair::generate().unwrap();
    maker.make(&resolved, &place, &key, false).unwrap()
}

/// Prometheus's targets are the environment's VMs (the shipped `prod`),
/// each labelled with its environment, role, VM, version and image; a job
/// per exporter only on the roles that run it. A version change of another
/// role changes the monitoring seed (the VM is replaced with the new
/// labels) and no other.
#[test]
fn the_monitoring_seed_scrapes_every_vm_of_the_environment_with_its_labels() {
    let project = Project::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut secrets = Secrets::default();
    secrets.insert("tls_private_key", "tls-key-unit-secret");
    let env = &project.config.environments["prod"];
    let mut maker = SeedMaker {
        env_name: "prod",
        env,
        versions: env
            .roles
            .keys()
            .map(|r| (r.to_owned(), format!("2026.12.0{}.1", r.len() % 5)))
            .collect(),
        ..lab_maker(&project, &secrets, FIXED_KEY.into())
    };
    let (seed, hash) = prod_seed(&maker, "monitoring", 1, "10.98.0.51");
    let config = written(&seed, "/etc/prometheus/prometheus.yml");
    let yaml: serde_json::Value = serde_yaml_ng::from_str(&config).unwrap();
    let jobs = yaml["scrape_configs"].as_array().unwrap();
    let job = |name: &str| -> Vec<(String, serde_json::Value)> {
        let job = jobs.iter().find(|j| j["job_name"] == name).unwrap();
        job["static_configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["targets"][0].as_str().unwrap().to_owned(),
                    c["labels"].clone(),
                )
            })
            .collect()
    };
    let node = job("node");
    assert_eq!(node.len(), 12, "every VM of prod: {node:?}");
    let ui = node.iter().find(|(t, _)| t == "10.98.0.22:9100").unwrap();
    assert_eq!(
        ui.1,
        serde_json::json!({
            "environment": "prod", "role": "ui", "vm": "prod-ui-2",
            "version": "2026.12.02.1", "image": "ui@2026.12.02.1",
        })
    );
    let targets = |name: &str| -> Vec<String> { job(name).into_iter().map(|(t, _)| t).collect() };
    assert_eq!(targets("nginx"), ["10.98.0.21:9113", "10.98.0.22:9113"]);
    assert_eq!(targets("haproxy"), ["10.98.0.5:8405", "10.98.0.6:8405"]);
    assert_eq!(
        targets("mysqld"),
        ["10.98.0.41:9104", "10.98.0.42:9104", "10.98.0.43:9104"]
    );
    assert_eq!(targets("https"), ["https://10.98.0.4/"]);

    // Every VM opens its exporters to the monitoring VM only, base's
    // firewall reload first.
    let (ui_seed, ui_hash) = prod_seed(&maker, "ui", 2, "10.98.0.22");
    assert_eq!(
        written(&ui_seed, "/etc/nftables.d/oxbake-monitoring.nft")
            .lines()
            .find(|l| l.starts_with("ip saddr")),
        Some("ip saddr { 10.98.0.51 } tcp dport { 9100, 9113 } accept")
    );
    assert_eq!(
        doc(&ui_seed)["runcmd"][0],
        "nft -c -f /etc/nftables.conf && nft -f /etc/nftables.conf"
    );

    maker.versions.insert("ui".into(), "2026.12.09.1".into());
    assert_ne!(prod_seed(&maker, "monitoring", 1, "10.98.0.51").1, hash);
    maker
        .versions
        .insert("backend".into(), "2026.12.09.1".into());
    assert_eq!(prod_seed(&maker, "ui", 2, "10.98.0.22").1, ui_hash);
}

/// Without a db role the backend's own MariaDB serves, and Prometheus
/// scrapes the mysqld exporter there instead (the job's `otherwise`).
#[test]
fn without_a_db_role_the_mysqld_job_scrapes_the_backends() {
    let project = Project::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut secrets = Secrets::default();
    secrets.insert("tls_private_key", "tls-key-unit-secret");
    let mut env = project.config.environments["prod"].clone();
    assert!(env.roles.remove("db").is_some());
    let maker = SeedMaker {
        env_name: "prod",
        env: &env,
        versions: env
            .roles
            .keys()
            .map(|r| (r.to_owned(), "2026.12.01.1".to_owned()))
            .collect(),
        ..lab_maker(&project, &secrets, FIXED_KEY.into())
    };
    let (seed, _) = prod_seed(&maker, "monitoring", 1, "10.98.0.51");
    let config = written(&seed, "/etc/prometheus/prometheus.yml");
    let yaml: serde_json::Value = serde_yaml_ng::from_str(&config).unwrap();
    let mysqld = yaml["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_name"] == "mysqld")
        .unwrap();
    let targets: Vec<&str> = mysqld["static_configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["targets"][0].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["10.98.0.11:9104", "10.98.0.12:9104"]);
}

/// The db role's backup secrets: a password and two generated keys.
fn backup_secrets(secrets: &mut Secrets) {
    secrets.insert("backup_password", "backup-pw-unit-secret");
    for name in ["backup_ssh_key", "backup_host_key"] {
        let key = HostKeyPair::generate().unwrap().private_openssh().unwrap();
        secrets.insert(name, &key);
    }
}

/// prod's backups: the first db node takes them into the backup VM over
/// SFTP, pinning the public half of `backup_host_key` and holding
/// `backup_ssh_key`; the backup VM authorizes that key's public half only
/// and opens its SFTP port to the db VMs only. No private key reaches a
/// file that is not root's alone, nor the other side.
#[test]
fn prod_backups_pin_the_repository_and_authorize_one_key() {
    let project = Project::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut secrets = Secrets::default();
    secrets.insert("db_password", "db-unit-secret");
    secrets.insert("sst_password", "sst-unit-secret");
    backup_secrets(&mut secrets);
    let private = |name: &str| secrets.get(name).unwrap().to_owned();
    let public = |name: &str| {
        crate::guest::ClientKey::from_openssh(&private(name))
            .unwrap()
            .public_line()
            .unwrap()
    };
    let env = &project.config.environments["prod"];
    let maker = SeedMaker {
        env_name: "prod",
        env,
        versions: env
            .roles
            .keys()
            .map(|r| (r.to_owned(), "2026.12.06.1".to_owned()))
            .collect(),
        ..lab_maker(&project, &secrets, FIXED_KEY.into())
    };
    let (first, _) = prod_seed(&maker, "db", 1, "10.98.0.41");
    let settings = written(&first, "/etc/oxbake/backup/backup.env");
    assert!(
        settings.contains("\nrepository='sftp:oxbake-backup:/restic'\n"),
        "{settings}"
    );
    assert!(settings.contains("\nseries='prod-db'\n"), "{settings}");
    assert!(settings.contains("\nbackup_node=yes\n"), "{settings}");
    let (second, _) = prod_seed(&maker, "db", 2, "10.98.0.42");
    assert!(written(&second, "/etc/oxbake/backup/backup.env").contains("\nbackup_node=no\n"));
    let ssh = written(&first, "/etc/oxbake/backup/ssh_config");
    assert!(
        ssh.contains("  HostName 10.98.0.61\n  Port 2222\n"),
        "{ssh}"
    );
    assert_eq!(
        written(&first, "/etc/oxbake/backup/known_hosts").trim(),
        format!("oxbake-backup {}", public("backup_host_key"))
    );
    let files = doc(&first)["write_files"].as_array().unwrap().clone();
    for f in &files {
        let content = f["content"].as_str().unwrap_or_default();
        for name in ["backup_ssh_key", "backup_password"] {
            if content.contains(private(name).trim()) {
                assert_eq!(f["permissions"], "0600", "{name} in {}", f["path"]);
            }
        }
        assert!(
            !content.contains(private("backup_host_key").trim()),
            "{}",
            f["path"]
        );
    }

    let (backup, _) = prod_seed(&maker, "backup", 1, "10.98.0.61");
    assert_eq!(
        written(&backup, "/etc/ssh/oxbake-backup/authorized_keys")
            .lines()
            .last(),
        Some(format!("restrict {}", public("backup_ssh_key")).as_str())
    );
    let nft = written(&backup, "/etc/nftables.d/oxbake-from-backup-clients.nft");
    assert!(
        nft.contains("ip saddr { 10.98.0.41, 10.98.0.42, 10.98.0.43 } tcp dport 2222 accept"),
        "{nft}"
    );
    let files = doc(&backup)["write_files"].as_array().unwrap().clone();
    for f in &files {
        let content = f["content"].as_str().unwrap_or_default();
        assert!(
            !content.contains(private("backup_ssh_key").trim()),
            "{}",
            f["path"]
        );
        assert!(!content.contains("backup-pw-unit-secret"), "{}", f["path"]);
    }
}
