use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

fn seed() -> BuilderSeed<'static> {
    BuilderSeed {
        instance_id: "oxbake-run1-web",
        hostname: "web-builder",
        user: "oxbake",
        authorized_key: "ssh-ed25519 AAAAC3Nza builder\n",
        host_key: HostKey {
            private_openssh: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n",
            public_openssh: "ssh-ed25519 AAAAhost host\n",
        },
        mac: None,
        group: None,
        apt_proxy: None,
    }
}

fn parse(doc: &str) -> Value {
    serde_json::from_str(doc).expect("document is JSON")
}

#[test]
fn user_data_starts_with_the_cloud_config_marker() {
    let data = builder_seed(&seed());
    assert!(data.user_data.starts_with("#cloud-config\n"));
}

#[test]
fn user_data_creates_the_builder_user_with_key_and_sudo() {
    let data = builder_seed(&seed());
    let doc = parse(data.user_data.trim_start_matches("#cloud-config\n"));
    assert_eq!(
        doc["users"],
        json!([{
            "name": "oxbake",
            "shell": "/bin/bash",
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "lock_passwd": true,
            "ssh_authorized_keys": ["ssh-ed25519 AAAAC3Nza builder"],
        }])
    );
    assert_eq!(doc["ssh_pwauth"], json!(false));
    assert_eq!(doc["disable_root"], json!(true));
}

#[test]
fn user_data_injects_the_host_key_pair() {
    let data = builder_seed(&seed());
    let doc = parse(data.user_data.trim_start_matches("#cloud-config\n"));
    assert_eq!(doc["ssh_deletekeys"], json!(true));
    assert_eq!(doc["ssh_genkeytypes"], json!([]));
    assert_eq!(
        doc["ssh_keys"]["ed25519_public"],
        json!("ssh-ed25519 AAAAhost host")
    );
    let private = doc["ssh_keys"]["ed25519_private"].as_str().unwrap();
    assert!(private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
    assert!(private.ends_with("-----END OPENSSH PRIVATE KEY-----\n"));
}

#[test]
fn meta_data_names_instance_and_host() {
    let doc = parse(&meta_data("i-1", "web-builder"));
    assert_eq!(
        doc,
        json!({"instance-id": "i-1", "local-hostname": "web-builder"})
    );
}

#[test]
fn network_config_runs_dhcp_on_eth0() {
    let doc = parse(&dhcp_network_config(None));
    assert_eq!(
        doc,
        json!({"version": 2, "ethernets": {"eth0": {"dhcp4": true}}})
    );
}

#[test]
fn network_config_can_match_the_mac_address() {
    let doc = parse(&dhcp_network_config(Some("52:54:00:AB:CD:EF")));
    let nic = &doc["ethernets"]["eth0"];
    assert_eq!(nic["match"]["macaddress"], json!("52:54:00:ab:cd:ef"));
    assert_eq!(nic["set-name"], json!("eth0"));
    assert_eq!(nic["dhcp4"], json!(true));
}

#[test]
fn host_key_debug_hides_the_private_key() {
    let text = format!("{:?}", seed().host_key);
    assert!(!text.contains("b3Bl"), "{text}");
    assert!(text.contains("<redacted>"));
}

#[tokio::test]
async fn seed_iso_has_the_cidata_label_and_the_three_files() {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("seed.iso");
    write_seed_iso(&builder_seed(&seed()), &iso).await.unwrap();
    let out = std::process::Command::new("xorriso")
        .args(["-indev"])
        .arg(&iso)
        .args(["-pvd_info", "-ls", "/"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("Volume Id    : cidata"), "{text}");
    for name in ["'user-data'", "'meta-data'", "'network-config'"] {
        assert!(text.contains(name), "{name} missing in {text}");
    }
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&iso).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn builder_joins_the_group_sshd_allows() {
    let mut s = seed();
    s.group = Some("ssh-users");
    let CloudInit { user_data, .. } = builder_seed(&s);
    let doc = parse(user_data.strip_prefix("#cloud-config\n").unwrap());
    assert_eq!(doc["users"][0]["groups"], "ssh-users");
    assert!(
        parse(
            builder_seed(&seed())
                .user_data
                .strip_prefix("#cloud-config\n")
                .unwrap()
        )["users"][0]
            .get("groups")
            .is_none()
    );
}

#[test]
fn builder_gets_the_apt_proxy_only_when_asked() {
    let plain = builder_seed(&seed());
    assert!(!plain.user_data.contains("write_files"));
    let proxied = builder_seed(&BuilderSeed {
        apt_proxy: Some("http://10.0.2.2:41234/"),
        ..seed()
    });
    let body = proxied.user_data.trim_start_matches("#cloud-config\n");
    let doc = parse(body);
    assert_eq!(doc["write_files"][0]["path"], APT_PROXY_CONF);
    assert_eq!(
        doc["write_files"][0]["content"],
        "Acquire::http::Proxy \"http://10.0.2.2:41234/\";\n\
         Acquire::CompressionTypes::Order { \"gz\"; };\n"
    );
}
