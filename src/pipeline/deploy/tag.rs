//! What a deployed VM's `run_id` label says: the deploy that made it, its
//! slot (index within the role) and the hash of its seed inputs, as
//! `DEPLOY.SLOT.SEED`. Both targets keep labels verbatim (local: vm.toml;
//! proxmox: the description's JSON block), so a later deploy can tell
//! whether the VM still matches what the environment wants.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployTag {
    pub deploy_id: String,
    pub slot: u32,
    pub seed: String,
}

impl DeployTag {
    pub fn parse(run_id: &str) -> Option<Self> {
        let mut parts = run_id.split('.');
        let deploy_id = parts.next()?.to_owned();
        let slot = parts.next()?.parse().ok()?;
        let seed = parts.next()?.to_owned();
        let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        (parts.next().is_none() && hex(&deploy_id) && hex(&seed)).then_some(Self {
            deploy_id,
            slot,
            seed,
        })
    }
}

impl fmt::Display for DeployTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.deploy_id, self.slot, self.seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_run_ids() {
        let tag = DeployTag {
            deploy_id: "1a2b3c4d".into(),
            slot: 2,
            seed: "0123456789abcdef".into(),
        };
        assert_eq!(tag.to_string(), "1a2b3c4d.2.0123456789abcdef");
        assert_eq!(DeployTag::parse(&tag.to_string()), Some(tag));
        for other in ["e2e-run", "1a2b.x.ff", "1a2b.1.ff.9", "1a2b.1.", "zz.1.ff"] {
            assert_eq!(DeployTag::parse(other), None, "{other}");
        }
    }
}
