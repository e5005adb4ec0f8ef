//! `oxbake inventory ENV`: an environment's deployed VMs as an Ansible
//! inventory. YAML for the `yaml` inventory plugin (a file Ansible reads with
//! `-i`), and with `--json` the document `ansible-inventory --list` prints
//! (what a dynamic inventory script returns). One group per role, the VMs
//! as hosts; Ansible connects as the deploy user with oxbake's environment
//! key and accepts only the host key oxbake pinned for the VM's address.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::pipeline::deploy::deployed::{Access, DeployedVm};

/// Ansible group names take letters, digits and `_` only.
pub fn group_name(role: &str) -> String {
    role.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Each running, reachable VM's host variables.
fn hostvars(env: &str, vms: &[DeployedVm]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for vm in vms {
        let (Some(ssh), Some(address)) = (vm.ssh, vm.address) else {
            continue;
        };
        let mut vars = Map::new();
        vars.insert("ansible_host".into(), json!(ssh.ip().to_string()));
        vars.insert("ansible_port".into(), json!(ssh.port()));
        vars.insert(
            "ansible_ssh_extra_args".into(),
            json!(format!("-o HostKeyAlias={address}")),
        );
        vars.insert("oxbake_env".into(), json!(env));
        vars.insert("oxbake_role".into(), json!(vm.role));
        vars.insert("oxbake_address".into(), json!(address.to_string()));
        if let Some(version) = &vm.version {
            vars.insert("oxbake_version".into(), json!(version));
            vars.insert(
                "oxbake_image".into(),
                json!(format!("{}@{version}", vm.role)),
            );
        }
        if let Some(slot) = &vm.slot {
            vars.insert("oxbake_slot".into(), json!(slot));
        }
        if let Some(node) = &vm.node {
            vars.insert("oxbake_node".into(), json!(node));
        }
        out.insert(vm.name.clone(), Value::Object(vars));
    }
    out
}

/// What every host shares: user, key, the pinned host keys.
fn group_vars(access: &Access) -> Value {
    json!({
        "ansible_user": access.user,
        "ansible_ssh_private_key_file": access.key_file.display().to_string(),
        "ansible_ssh_common_args": format!(
            "-o StrictHostKeyChecking=yes -o UserKnownHostsFile={} -o IdentitiesOnly=yes",
            access.known_hosts.display()
        ),
    })
}

fn groups<'a>(
    vms: &'a [DeployedVm],
    hosts: &BTreeMap<String, Value>,
) -> BTreeMap<String, Vec<&'a str>> {
    let mut groups: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for vm in vms.iter().filter(|vm| hosts.contains_key(&vm.name)) {
        groups
            .entry(group_name(&vm.role))
            .or_default()
            .push(&vm.name);
    }
    groups
}

/// The `ansible-inventory --list` document.
pub fn json(env: &str, vms: &[DeployedVm], access: &Access) -> Value {
    let hosts = hostvars(env, vms);
    let groups = groups(vms, &hosts);
    let mut doc = Map::new();
    doc.insert("_meta".into(), json!({ "hostvars": hosts }));
    doc.insert(
        "all".into(),
        json!({ "children": groups.keys().collect::<Vec<_>>(), "vars": group_vars(access) }),
    );
    for (group, members) in &groups {
        doc.insert(group.clone(), json!({ "hosts": members }));
    }
    Value::Object(doc)
}

/// The same inventory as YAML. Every scalar is written double-quoted with
/// JSON's escapes, which YAML reads the same way, so no value can open a
/// structure of its own.
pub fn yaml(env: &str, vms: &[DeployedVm], access: &Access) -> String {
    let hosts = hostvars(env, vms);
    let groups = groups(vms, &hosts);
    let quote = |v: &Value| match v {
        Value::String(s) => serde_json::to_string(s).unwrap_or_default(),
        other => other.to_string(),
    };
    let mut out = format!(
        "# oxbake inventory {}: the deployed VMs of environment {}\nall:\n  vars:\n",
        quote(&json!(env)),
        quote(&json!(env))
    );
    if let Value::Object(vars) = group_vars(access) {
        for (k, v) in &vars {
            out.push_str(&format!("    {k}: {}\n", quote(v)));
        }
    }
    out.push_str("  children:\n");
    if groups.is_empty() {
        out.push_str("    {}\n");
    }
    for (group, members) in &groups {
        out.push_str(&format!("    {group}:\n      hosts:\n"));
        for name in members {
            out.push_str(&format!("        {}:\n", quote(&json!(name))));
            if let Some(Value::Object(vars)) = hosts.get(*name) {
                for (k, v) in vars {
                    out.push_str(&format!("          {k}: {}\n", quote(v)));
                }
            }
        }
    }
    out
}
