//! The NoCloud seed of one deployed VM: the operator's user with its keys
//! (plus oxbake's environment key), the host name, a static
//! network-config, and the role's deploy templates rendered with the
//! environment's values and secrets, delivered as `write_files`, followed
//! by the role's `[deploy] commands` as `runcmd` (its `bootstrap_commands`
//! on the VM that starts the role from nothing, see [`super::plan::mark_bootstrap`]).
//!
//! Secrets reach only the user-data, which the targets write to 0600 files;
//! the seed hash that labels the VM is keyed with oxbake's private
//! environment key, so it reveals nothing about them.
//!
//! Each VM also gets a fresh ed25519 host key through `ssh_keys` (the image
//! has none, and cloud-init makes no other), so oxbake pins it from the
//! first login on. The key is random per VM: it is added after the seed
//! hash is taken, so a deploy with nothing changed stays a no-op.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use minijinja::Value;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::DeployError;
use crate::environment::Environment;
use crate::guest::HostKeyPair;
use crate::project::Project;
use crate::render::Renderer;
use crate::role::Role;
use crate::secrets::Secrets;
use crate::target::cloudinit::{cloud_config, meta_data};
use crate::target::{CloudInit, VmNics};

/// The name of slot `slot` (1-based) of `role` in environment `env`: its
/// host name and the name the target gives it.
pub fn vm_name(env: &str, role: &str, slot: usize) -> String {
    format!("{env}-{role}-{slot}")
}

/// One VM to seed.
#[derive(Debug, Clone)]
pub struct VmPlace<'a> {
    pub role: &'a str,
    pub slot: u32,
    pub hostname: String,
    pub address: Ipv4Addr,
    pub version: &'a str,
    /// The packages installed in that version's image (its registry
    /// record's), name to version.
    pub packages: &'a BTreeMap<String, String>,
    /// The NICs the target gives the VM (its network-config describes them).
    pub nics: VmNics,
}

/// Makes the seeds of one environment.
pub struct SeedMaker<'a> {
    pub project: &'a Project,
    pub env_name: &'a str,
    pub env: &'a Environment,
    pub renderer: Renderer,
    pub secrets: &'a Secrets,
    /// oxbake's `ssh-ed25519 …` line for the deploy user.
    pub key_line: String,
    /// Keys the seed hash (the environment key's private half).
    pub hash_key: String,
    /// The version each role of the environment runs in this deploy
    /// (`env.roles.ROLE.version`).
    pub versions: BTreeMap<String, String>,
}

impl SeedMaker<'_> {
    /// The seed (with `host`'s key pair) and the hash of its inputs (without
    /// it). With `bootstrap` the seed runs the role's `bootstrap_commands`;
    /// the hash is always taken over the seed with `commands`, so the VM
    /// that bootstrapped is as wanted by the next deploy, which would give
    /// it `commands`.
    pub fn make(
        &self,
        role: &Role<'_>,
        vm: &VmPlace<'_>,
        host: &HostKeyPair,
        bootstrap: bool,
    ) -> Result<(CloudInit, String), DeployError> {
        let mut doc = self.user_data(role, vm)?;
        let network = self.network_config(vm);
        let mut hash = Sha256::new();
        for part in [&self.hash_key, &vm.hostname, &cloud_config(&doc), &network] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        let seed = hex::encode(&hash.finalize()[..8]);
        if bootstrap {
            doc["runcmd"] = json!(role.deploy_commands(true));
        }
        let host_err = |e| DeployError::HostKey {
            vm: vm.hostname.clone(),
            source: Box::new(e),
        };
        doc["ssh_keys"] = json!({
            "ed25519_private": host.private_openssh().map_err(host_err)?,
            "ed25519_public": host.public_line().map_err(host_err)?.trim(),
        });
        let data = CloudInit {
            user_data: cloud_config(&doc),
            meta_data: meta_data(&format!("oxbake-{}-{seed}", vm.hostname), &vm.hostname),
            network_config: Some(network),
        };
        Ok((data, seed))
    }

    fn user_data(
        &self,
        role: &Role<'_>,
        vm: &VmPlace<'_>,
    ) -> Result<serde_json::Value, DeployError> {
        let context = self.context(role, vm);
        let mut files = Vec::new();
        for t in role.deploy_templates() {
            let content = self
                .renderer
                .render(t.source.get_ref(), &context)
                .map_err(|source| DeployError::Render {
                    role: vm.role.to_owned(),
                    source,
                })?;
            files.push(json!({
                "path": t.dest.get_ref(),
                "content": content,
                "permissions": t.mode.get_ref(),
                "owner": t.owner.get_ref(),
            }));
        }
        let mut keys: Vec<&str> = self.env.ssh_keys.iter().map(|k| k.trim()).collect();
        keys.push(self.key_line.trim());
        let mut user = json!({
            "name": self.env.user,
            "shell": "/bin/bash",
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "lock_passwd": true,
            "ssh_authorized_keys": keys,
        });
        if let Some(group) = &role.ssh_group {
            user["groups"] = json!(group);
        }
        Ok(json!({
            "hostname": vm.hostname,
            "fqdn": self.fqdn(vm),
            "prefer_fqdn_over_hostname": false,
            "users": [user],
            "disable_root": true,
            "ssh_pwauth": false,
            // Only the host key the seed carries, the one oxbake pins.
            "ssh_deletekeys": true,
            "ssh_genkeytypes": [],
            "write_files": files,
            "runcmd": role.deploy_commands(false),
        }))
    }

    fn context(&self, role: &Role<'_>, vm: &VmPlace<'_>) -> Value {
        let recipe = role.recipe();
        let mut all: BTreeMap<String, serde_json::Value> = role
            .vars
            .iter()
            .filter_map(|(k, v)| serde_json::to_value(v).ok().map(|v| (k.clone(), v)))
            .collect();
        all.insert("role".into(), json!(vm.role));
        let values = self
            .env
            .roles
            .get(vm.role)
            .map(|r| r.get_ref().values.get_ref().clone())
            .unwrap_or_default();
        let mut env = json!(values);
        env["roles"] = self.peers();
        all.insert("env".into(), env);
        let deploy = &recipe.deploy;
        let mut secrets: BTreeMap<&str, &str> = (deploy.secrets.iter())
            .filter_map(|n| self.secrets.get(n).map(|v| (n.as_str(), v)))
            .collect();
        for name in &deploy.optional_secrets {
            secrets.insert(name, self.secrets.get(name).unwrap_or_default());
        }
        all.insert("secrets".into(), json!(secrets));
        let net = &self.env.network;
        all.insert(
            "vm".into(),
            json!({
                "name": vm.hostname, "hostname": vm.hostname, "fqdn": self.fqdn(vm),
                "address": vm.address.to_string(), "prefix": net.prefix,
                "gateway": net.gateway.to_string(), "dns": net.dns, "index": vm.slot,
                "env": self.env_name, "role": vm.role, "version": vm.version,
            }),
        );
        // The image the VM is cloned from: a template can name what it holds
        // (a cluster keyed by the OX version, say).
        all.insert(
            "image".into(),
            json!({ "version": vm.version, "packages": vm.packages }),
        );
        Value::from(minijinja::value::Serde(&all))
    }

    /// `env.roles`: every role of the project with its VMs in this
    /// environment, in slot order: `addresses`, the image `version` they run
    /// after this deploy, and `vms` (`name`, `address`, `slot`); empty lists
    /// where the environment runs none. A load balancer's, a cluster's or
    /// the monitoring's template lists its peers from the environment
    /// instead of a hand-copied value. A template that reads the versions
    /// makes its VM's seed change (and the VM be replaced) when one does.
    fn peers(&self) -> serde_json::Value {
        let roles: BTreeMap<&str, serde_json::Value> = self
            .project
            .recipes
            .keys()
            .map(|name| {
                let addresses: Vec<String> = self
                    .env
                    .roles
                    .get(name)
                    .map(|r| {
                        r.get_ref()
                            .slot_addresses()
                            .map(|a| a.to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                let vms: Vec<serde_json::Value> = addresses
                    .iter()
                    .enumerate()
                    .map(|(i, address)| {
                        json!({
                            "name": vm_name(self.env_name, name, i + 1),
                            "address": address,
                            "slot": i + 1,
                        })
                    })
                    .collect();
                let version = self.versions.get(name.as_str());
                (
                    name.as_str(),
                    json!({ "addresses": addresses, "version": version, "vms": vms }),
                )
            })
            .collect();
        json!(roles)
    }

    fn fqdn(&self, vm: &VmPlace<'_>) -> String {
        match &self.env.network.domain {
            Some(domain) => format!("{}.{domain}", vm.hostname),
            None => vm.hostname.clone(),
        }
    }

    /// A version 2 network-config for the NICs the target gives: the
    /// declared address on `eth0`, with the default route through the
    /// gateway on a bridge; on a segment without it, the route going
    /// through the target's management NIC `eth1` (DHCP). Several NICs are
    /// matched by MAC.
    fn network_config(&self, vm: &VmPlace<'_>) -> String {
        let net = &self.env.network;
        let mut nameservers = json!({ "addresses": net.dns });
        if let Some(domain) = &net.domain {
            nameservers["search"] = json!([domain]);
        }
        let mut eth0 = json!({
            "addresses": [format!("{}/{}", vm.address, net.prefix)],
            "nameservers": nameservers,
        });
        let ethernets = match &vm.nics {
            VmNics::Bridged => {
                // `to: default` needs cloud-init 23.1+; Debian 12 has 22.4
                // ("Address default is not a valid ip address").
                eth0["routes"] = json!([{ "to": "0.0.0.0/0", "via": net.gateway.to_string() }]);
                json!({ "eth0": eth0 })
            }
            VmNics::Segment {
                segment_mac,
                management_mac,
            } => {
                eth0["match"] = json!({ "macaddress": segment_mac });
                eth0["set-name"] = json!("eth0");
                let eth1 = json!({
                    "match": { "macaddress": management_mac },
                    "set-name": "eth1",
                    "dhcp4": true,
                });
                json!({ "eth0": eth0, "eth1": eth1 })
            }
        };
        let doc = json!({ "version": 2, "ethernets": ethernets });
        format!("{doc}\n")
    }
}

#[cfg(test)]
mod tests;
