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
    choose_address(interfaces, mac).ok()
}

/// As [`pick_address`]; when no address qualifies, what the agent
/// reported and why each NIC or address was refused
/// (`lo: 127.0.0.1 loopback; eth0 [bc:24:…]: fe80::1 link-local`).
pub fn choose_address(interfaces: &[Interface], mac: Option<&str>) -> Result<IpAddr, String> {
    let mut usable = Vec::new();
    let mut report = Vec::new();
    for nic in interfaces {
        let shown = match &nic.mac {
            Some(m) => format!("{} [{m}]", nic.name),
            None => nic.name.clone(),
        };
        if let Some(why) = nic_refused(nic, mac) {
            let addrs: Vec<&str> = nic.addresses.iter().map(|a| a.address.as_str()).collect();
            let listed = if addrs.is_empty() {
                String::new()
            } else {
                format!(" {}", addrs.join(", "))
            };
            report.push(format!("{shown}:{listed} ({why})"));
            continue;
        }
        if nic.addresses.is_empty() {
            report.push(format!("{shown}: no address yet"));
        }
        let mut refused = Vec::new();
        for a in &nic.addresses {
            match a.address.parse::<IpAddr>() {
                Ok(ip) => match address_refused(ip) {
                    None => usable.push(ip),
                    Some(why) => refused.push(format!("{} {why}", a.address)),
                },
                Err(_) => refused.push(format!("`{}` not an IP address", a.address)),
            }
        }
        if !refused.is_empty() {
            report.push(format!("{shown}: {}", refused.join(", ")));
        }
    }
    usable.sort_by_key(|ip| ip.is_ipv6());
    if let Some(ip) = usable.first() {
        return Ok(*ip);
    }
    if report.is_empty() {
        return Err("the guest agent reported no network interfaces".to_string());
    }
    Err(format!("the guest agent reported {}", report.join("; ")))
}

/// Why no address of `nic` is considered.
fn nic_refused(nic: &Interface, mac: Option<&str>) -> Option<String> {
    match mac {
        Some(mac)
            if !nic
                .mac
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case(mac)) =>
        {
            Some(format!("not net0's NIC {mac}"))
        }
        None if nic.name == "lo" => Some("loopback interface".to_string()),
        _ => None,
    }
}

/// Why `ip` cannot reach the guest from outside.
fn address_refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("loopback"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
        IpAddr::V4(v4) if v4.is_unspecified() => Some("unspecified"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("loopback"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("unspecified"),
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("link-local"),
        _ => None,
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
    fn a_refusal_lists_every_nic_and_why_each_address_was_refused() {
        let mut all = nics();
        all[2]
            .addresses
            .retain(|a| !matches!(a.address.as_str(), "10.0.0.5" | "fd00::5"));
        let why = choose_address(&all, Some("bc:24:11:aa:bb:cc")).unwrap_err();
        assert_eq!(
            why,
            "the guest agent reported lo [00:00:00:00:00:00]: 127.0.0.1, ::1 \
             (not net0's NIC bc:24:11:aa:bb:cc); \
             docker0 [02:42:ac:11:00:01]: 172.17.0.1 (not net0's NIC bc:24:11:aa:bb:cc); \
             eth0 [bc:24:11:aa:bb:cc]: fe80::be24:11ff:feaa:bbcc link-local, \
             169.254.3.4 link-local; \
             eth1 [bc:24:11:00:00:02]: (not net0's NIC bc:24:11:aa:bb:cc)"
        );
        let why = choose_address(&all[..1], None).unwrap_err();
        assert_eq!(
            why,
            "the guest agent reported lo [00:00:00:00:00:00]: 127.0.0.1, ::1 (loopback interface)"
        );
        let why = choose_address(&all[2..], None).unwrap_err();
        assert!(why.contains("eth0 [bc:24:11:aa:bb:cc]: fe80::"), "{why}");
        assert!(
            why.contains("eth1 [bc:24:11:00:00:02]: no address yet"),
            "{why}"
        );
        assert_eq!(
            choose_address(&[], None).unwrap_err(),
            "the guest agent reported no network interfaces"
        );
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
