//! The QEMU guest agent through Proxmox, and choosing the address oxbake
//! connects to: an address on the NIC whose MAC is `net0`'s, never loopback
//! or link-local, IPv4 before IPv6.

use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;

use super::form::Form;
use super::vm::VmRef;
use super::{PveClient, PveError};

/// One NIC as `network-get-interfaces` reports it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    #[serde(rename = "hardware-address", default)]
    pub mac: Option<String>,
    /// Absent until the NIC has addresses (e.g. before DHCP finished).
    #[serde(rename = "ip-addresses", default)]
    pub addresses: Vec<IfAddress>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct IfAddress {
    #[serde(rename = "ip-address")]
    pub address: String,
    #[serde(rename = "ip-address-type", default)]
    pub kind: Option<String>,
}

impl PveClient {
    /// `POST …/agent/ping`: succeeds once the agent answers.
    pub async fn agent_ping(&self, vm: &VmRef) -> Result<(), PveError> {
        let _: Value = self.post(&vm.path("/agent/ping"), Form::new()).await?;
        Ok(())
    }

    /// `GET …/agent/network-get-interfaces`. A guest-side agent error (HTTP
    /// 200 with `result.error`) is reported as [`PveError::Server`].
    pub async fn agent_interfaces(&self, vm: &VmRef) -> Result<Vec<Interface>, PveError> {
        let path = vm.path("/agent/network-get-interfaces");
        let data: Value = self.get(&path, Form::new()).await?;
        let result = data.get("result").cloned().unwrap_or(Value::Null);
        if let Some(err) = result.get("error") {
            return Err(PveError::Server {
                what: format!("GET {path}"),
                status: 200,
                message: format!("guest agent error: {err}"),
            });
        }
        serde_json::from_value(result).map_err(|e| PveError::Decode {
            what: format!("GET {path}"),
            message: e.to_string(),
        })
    }
}

/// The address to reach the guest at: on the NIC with `mac` (any NIC but
/// `lo` when `mac` is unknown), not loopback, link-local or unspecified;
/// IPv4 first.
pub fn pick_address(interfaces: &[Interface], mac: Option<&str>) -> Option<IpAddr> {
    let nic_matches = |nic: &&Interface| match mac {
        Some(mac) => nic
            .mac
            .as_deref()
            .is_some_and(|m| m.eq_ignore_ascii_case(mac)),
        None => nic.name != "lo",
    };
    let mut usable: Vec<IpAddr> = interfaces
        .iter()
        .filter(nic_matches)
        .flat_map(|nic| nic.addresses.iter())
        .filter_map(|a| a.address.parse::<IpAddr>().ok())
        .filter(|ip| usable_address(*ip))
        .collect();
    usable.sort_by_key(|ip| ip.is_ipv6());
    usable.first().copied()
}

fn usable_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()),
        IpAddr::V6(v6) => {
            !(v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// The static address in an `ipconfig0` value (`ip=10.0.0.5/24,gw=…`).
pub fn static_address(ipconfig: &str) -> Option<IpAddr> {
    ipconfig.split(',').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        let ip = v.split('/').next()?;
        matches!(k, "ip" | "ip6").then(|| ip.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nics() -> Vec<Interface> {
        serde_json::from_value(serde_json::json!([
            {"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [
                {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
                {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128}]},
            {"name": "docker0", "hardware-address": "02:42:ac:11:00:01", "ip-addresses": [
                {"ip-address": "172.17.0.1", "ip-address-type": "ipv4", "prefix": 16}]},
            {"name": "eth0", "hardware-address": "bc:24:11:aa:bb:cc", "ip-addresses": [
                {"ip-address": "fe80::be24:11ff:feaa:bbcc", "ip-address-type": "ipv6", "prefix": 64},
                {"ip-address": "fd00::5", "ip-address-type": "ipv6", "prefix": 64},
                {"ip-address": "169.254.3.4", "ip-address-type": "ipv4", "prefix": 16},
                {"ip-address": "10.0.0.5", "ip-address-type": "ipv4", "prefix": 24}]},
            {"name": "eth1", "hardware-address": "bc:24:11:00:00:02"}
        ]))
        .unwrap()
    }

    #[test]
    fn the_net0_nic_wins_and_loopback_and_link_local_never_do() {
        let all = nics();
        assert_eq!(
            pick_address(&all, Some("BC:24:11:AA:BB:CC")),
            Some("10.0.0.5".parse().unwrap())
        );
        let mut v6_only = all.clone();
        v6_only[2].addresses.retain(|a| a.address != "10.0.0.5");
        assert_eq!(
            pick_address(&v6_only, Some("bc:24:11:aa:bb:cc")),
            Some("fd00::5".parse().unwrap())
        );
        assert_eq!(pick_address(&all, Some("bc:24:11:00:00:02")), None);
        assert_eq!(pick_address(&all[..1], None), None);
    }

    #[test]
    fn static_ipconfig_addresses_are_read() {
        assert_eq!(
            static_address("gw=10.0.0.1,ip=10.0.0.7/24"),
            Some("10.0.0.7".parse().unwrap())
        );
        assert_eq!(static_address("ip=dhcp"), None);
    }
}
