//! `[environments.NAME]` in oxbake.toml: where and how a set of VMs runs the
//! versions of one channel. The shape only; what `oxbake check` adds on
//! top, against the project's recipes and targets, is
//! [`crate::environment::validate`].

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// One environment (`[environments.NAME]`).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The target its VMs live on (default: the project's default target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The channel whose versions it runs.
    #[schemars(with = "String")]
    pub channel: Spanned<String>,
    /// The operator's login on every VM (passwordless sudo, keys only).
    pub user: String,
    /// The operator's `ssh-… AAAA… comment` lines for `user`.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    pub network: Network,
    /// Per role: how many VMs, their size, addresses and values.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RoleSettings>")]
    pub roles: BTreeMap<String, Spanned<RoleSettings>>,
}

/// Network defaults shared by the environment's VMs.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// The prefix length of the VMs' addresses (`24` for a /24).
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    /// The DNS domain: a VM's FQDN is `HOSTNAME.domain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// `[environments.NAME.roles.ROLE]`.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleSettings {
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_gib: Option<u32>,
    /// One static address per VM, in order.
    #[serde(default)]
    #[schemars(with = "Vec<Ipv4Addr>")]
    pub addresses: Vec<Spanned<Ipv4Addr>>,
    /// Proxmox nodes the VMs are placed on, round robin: the role's VM `i`
    /// (0-based) goes to `nodes[i % len]` (default: the target's first
    /// node). Only for proxmox targets: `oxbake check` refuses it on a
    /// local one, and a node the target's `nodes` do not list.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub nodes: Vec<Spanned<String>>,
    /// TCP ports the VMs offer to the environment's other VMs (the local
    /// target forwards them between guests).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Values for the role's deploy templates (`env.NAME`).
    #[serde(default = "no_values")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub values: Spanned<BTreeMap<String, toml::Value>>,
    /// How a VM of the role is replaced (see [`Replace`]).
    #[serde(default)]
    pub replace: Replace,
    /// How many of the role's VMs a deploy may replace at once (default
    /// 1: the others keep serving). `oxbake check` refuses 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<u32>")]
    pub max_unavailable: Option<Spanned<u32>>,
    /// Roles of the environment deployed before this one (a deploy is a
    /// graph of roles: `oxbake check` refuses unknown roles and cycles).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub after: Vec<Spanned<String>>,
}

/// How a slot's VM is replaced. Only one strategy is safe on a shared
/// network where the new VM takes the old one's static address: the old
/// VM stops before the new one starts.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Replace {
    /// Stop the old VM, start the new one at the same address, prove it
    /// healthy, then destroy the old; if the new one fails, remove it and
    /// start the old one again.
    #[default]
    StopFirst,
}

impl RoleSettings {
    /// The addresses of the VMs the environment runs: one per slot, in
    /// slot order (`addresses` beyond `count` are unused).
    pub fn slot_addresses(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.addresses
            .iter()
            .take(self.count as usize)
            .map(|a| *a.get_ref())
    }

    /// `max_unavailable`, or its default 1.
    pub fn max_unavailable(&self) -> u32 {
        self.max_unavailable.as_ref().map_or(1, |m| *m.get_ref())
    }
}

fn one() -> u32 {
    1
}

fn no_values() -> Spanned<BTreeMap<String, toml::Value>> {
    Spanned::new(0..0, BTreeMap::new())
}

impl Environment {
    /// The target's name, given the project's default.
    pub fn target_name<'a>(&'a self, default: &'a str) -> &'a str {
        self.target.as_deref().unwrap_or(default)
    }
}
