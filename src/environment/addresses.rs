//! An environment's network: a prefix that leaves room for VMs, and static
//! addresses that are usable in the subnet the gateway is in, each given
//! to one VM only.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::Environment;

/// The prefix lengths an environment may use: /8 to /30 (a /31 or /32 has
/// no room for a gateway and VMs besides the network's own addresses).
pub const PREFIXES: std::ops::RangeInclusive<u8> = 8..=30;

/// Why the prefix is refused, if it is.
pub fn prefix_problem(env: &str, prefix: u8) -> Option<String> {
    (!PREFIXES.contains(&prefix)).then(|| {
        format!(
            "environment `{env}`: `prefix` = {prefix} is out of range: it must be at least {} \
             and at most {}",
            PREFIXES.start(),
            PREFIXES.end()
        )
    })
}

/// Every static address of `env` that cannot work, with where it is (the
/// span start of the address) and why: outside the gateway's subnet, the
/// gateway itself, the subnet's network or broadcast address, or given to
/// another VM already. Assumes the prefix passed [`prefix_problem`].
pub fn address_problems(name: &str, env: &Environment) -> Vec<(usize, String)> {
    let prefix = env.network.prefix;
    let gateway = env.network.gateway;
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let network = Ipv4Addr::from(u32::from(gateway) & mask);
    let broadcast = Ipv4Addr::from(u32::from(network) | !mask);
    let subnet = format!("{network}/{prefix}");
    let mut first: BTreeMap<Ipv4Addr, &str> = BTreeMap::new();
    let mut problems = Vec::new();
    for (role, settings) in &env.roles {
        for address in &settings.get_ref().addresses {
            let a = *address.get_ref();
            let why = if u32::from(a) & mask != u32::from(network) {
                Some(format!("is outside the subnet {subnet} of the gateway"))
            } else if a == gateway {
                Some("is the gateway's".to_owned())
            } else if a == network {
                Some(format!("is the network address of {subnet}"))
            } else if a == broadcast {
                Some(format!("is the broadcast address of {subnet}"))
            } else {
                first
                    .insert(a, role)
                    .map(|other| format!("is given twice (role `{other}` has it too)"))
            };
            if let Some(why) = why {
                let message = format!("environment `{name}`, role `{role}`: address {a} {why}");
                problems.push((address.span().start, message));
            }
        }
    }
    problems
}
