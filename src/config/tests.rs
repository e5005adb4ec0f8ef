use std::path::Path;

use super::*;
use crate::suite::Suite;

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(Path::new("oxbake.toml"), "[project]\nname = \"ox\"\n").unwrap();
    assert_eq!(c.project.default_target, "local");
    assert_eq!(c.project.channels, ["dev", "staging", "prod"]);
    assert_eq!(c.defaults.cores, 2);
}

const PVE: &str = "[project]\nname = \"ox\"\n[targets.pve]\nkind = \"proxmox\"\n\
    endpoint = \"https://pve:8006\"\nnodes = [\"pve1\"]\nstorage = \"s\"\n\
    vmid_range = [9000, 9999]\nbase_template = 9000\ntoken_id = \"a@pve!b\"\n";

#[test]
fn a_token_secret_is_refused_without_showing_it() {
    parse(Path::new("oxbake.toml"), PVE).unwrap();
    let text = format!("{PVE}token_secret = \"hunter2-very-secret\"\n");
    let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
    let d = all.iter().next().unwrap();
    assert!(
        d.message.contains("secrets never live in oxbake.toml"),
        "{d}"
    );
    assert!(!d.to_string().contains("hunter2"), "{d}");
    assert_eq!((d.line, d.column), (11, 1), "{d}");
}

#[test]
fn reversed_vmid_range_and_unknown_default_target_are_refused() {
    let text = PVE.replace("[9000, 9999]", "[9000, 9100, 9999]");
    let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
    let d = all.iter().next().unwrap();
    assert!(d.message.contains("found 3 items"), "{d}");
    assert_eq!((d.line, d.column), (8, 14), "{d}");
    let text = PVE.replace("[9000, 9999]", "[9999, 9000]");
    let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
    let d = all.iter().next().unwrap();
    assert!(d.message.contains("reversed"), "{d}");
    assert_eq!((d.line, d.column), (8, 14), "{d}");
    let text = "[project]\nname = \"ox\"\ndefault_target = \"pve\"\n";
    let all = parse(Path::new("oxbake.toml"), text).unwrap_err();
    let d = all.iter().next().unwrap();
    assert!(d.message.contains("default target `pve`"), "{d}");
    assert_eq!(d.line, 3, "{d}");
    let with_pve = PVE.replace(
        "name = \"ox\"\n",
        "name = \"ox\"\ndefault_target = \"pve\"\n",
    );
    parse(Path::new("oxbake.toml"), &with_pve).unwrap();
}

#[test]
fn secrets_table_is_read_and_checked() {
    let text = "[project]\nname = \"ox\"\n[secrets]\nvault = \"group_vars/all/vault.yml\"\npassword_env = \"PW\"\n";
    let c = parse(Path::new("oxbake.toml"), text).unwrap();
    assert_eq!(c.secrets.vault.as_deref(), Some("group_vars/all/vault.yml"));
    assert_eq!(c.secrets.password_env.as_deref(), Some("PW"));
    let bad = text.replace("password_env", "pasword_env");
    let all = parse(Path::new("oxbake.toml"), &bad).unwrap_err();
    let d = all.iter().next().unwrap();
    assert!(d.message.contains("pasword_env"), "{d}");
}

#[test]
fn unknown_key_in_a_target_is_refused_with_its_place() {
    let text = "[project]\nname = \"ox\"\n[targets.lab]\nkind = \"local\"\nacel = \"tcg\"\n";
    let all = parse(Path::new("oxbake.toml"), text).unwrap_err();
    let d = all.iter().next().unwrap();
    assert!(d.message.contains("acel"), "{d}");
    assert_eq!(d.line, 5, "{d}");
}

#[test]
fn api_timeouts_default_are_read_and_must_not_be_zero() {
    let c = parse(Path::new("oxbake.toml"), PVE).unwrap();
    let TargetSettings::Proxmox(pve) = &c.targets["pve"] else {
        panic!("not proxmox");
    };
    assert_eq!((pve.request_timeout, pve.task_timeout), (120, 600));
    let text = format!("{PVE}request_timeout = 5\ntask_timeout = 90\n");
    let c = parse(Path::new("oxbake.toml"), &text).unwrap();
    let TargetSettings::Proxmox(pve) = &c.targets["pve"] else {
        panic!("not proxmox");
    };
    assert_eq!((pve.request_timeout, pve.task_timeout), (5, 90));
    let text = format!("{PVE}request_timeout = 5\ntask_timeout = 0x0\n");
    let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
    let d = all.iter().next().unwrap();
    assert!(
        d.message.contains("`task_timeout` = 0 is out of range"),
        "{d}"
    );
    assert_eq!((d.line, d.column), (12, 16), "{d}");
    for bad in ["\"30s\"", "-5", "2.5"] {
        let text = format!("{PVE}request_timeout = {bad}\n");
        let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
        let d = all.iter().next().unwrap();
        assert_eq!(d.line, 11, "{bad}: {d}");
    }
}

#[test]
fn ssh_forward_maps_vmids_to_ports_and_must_fit_the_range() {
    let text = format!("{PVE}ssh_forward = {{ host = \"192.0.2.7\", port_base = 20000 }}\n");
    let c = parse(Path::new("oxbake.toml"), &text).unwrap();
    let TargetSettings::Proxmox(pve) = &c.targets["pve"] else {
        panic!("not proxmox");
    };
    let forward = pve.ssh_forward.as_ref().unwrap();
    assert_eq!(forward.host.to_string(), "192.0.2.7");
    assert_eq!(forward.port(9000), Some(29000));
    let text = text.replace("20000", "60000");
    let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
    let d = all.iter().next().unwrap();
    assert!(d.message.contains("port_base 60000 + VMID 9999"), "{d}");
    assert_eq!(d.line, 11, "{d}");
}

#[test]
fn an_unknown_default_target_points_at_its_key_not_a_comment_naming_it() {
    let text = "# default_target names the target builds use\n[project]\nname = \"ox\"\n\
                # the lab's default_target\ndefault_target = \"pve\"\n";
    let all = parse(Path::new("oxbake.toml"), text).unwrap_err();
    let d = all.iter().next().unwrap();
    assert!(d.message.contains("default target `pve`"), "{d}");
    assert_eq!((d.line, d.column), (5, 1), "{d}");
}

#[test]
fn each_debian_release_has_its_own_base_template() {
    let text = format!("{PVE}base_templates = {{ trixie = 9001 }}\n");
    let c = parse(Path::new("oxbake.toml"), &text).unwrap();
    let Some(TargetSettings::Proxmox(p)) = c.targets.get("pve") else {
        panic!("no pve")
    };
    assert_eq!(p.base_template_of(Suite::Bookworm), Some(9000));
    assert_eq!(p.base_template_of(Suite::Trixie), Some(9001));
    let c = parse(Path::new("oxbake.toml"), PVE).unwrap();
    let Some(TargetSettings::Proxmox(p)) = c.targets.get("pve") else {
        panic!("no pve")
    };
    assert_eq!(p.base_template_of(Suite::Trixie), None);
    let text = format!("{PVE}base_templates = {{ trixie = 9000 }}\n");
    let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
    let d = all.iter().next().unwrap();
    assert_eq!(
        d.message,
        "`base_templates`: template 9000 is the base of both bookworm and trixie; each Debian \
         release needs its own"
    );
    assert_eq!((d.line, d.column), (11, 18), "{d}");
}
