//! The identity of a target's base image of each suite: recorded as the
//! parent of root roles and hashed into their inputs, so a role built on
//! trixie and the same role built on bookworm never share an inputs hash.

use std::collections::BTreeMap;

use crate::config::{ProxmoxSettings, TargetSettings};
use crate::suite::Suite;
use crate::target::TargetError;
use crate::target::local::base::{self, BootstrapOptions};
use crate::target::local::base_meta;

/// One identity per suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseIdentities(BTreeMap<Suite, String>);

impl BaseIdentities {
    /// The identities `identity` gives each suite.
    pub fn from_fn(identity: impl Fn(Suite) -> String) -> Self {
        BaseIdentities(Suite::ALL.into_iter().map(|s| (s, identity(s))).collect())
    }

    /// The identity of the base image of `suite`.
    pub fn of(&self, suite: Suite) -> &str {
        self.0.get(&suite).map_or("", String::as_str)
    }

    /// The identities of the bases of the target `settings` configures,
    /// without opening anything (for `oxbake inputs` and the nightly).
    pub async fn of_target(settings: &TargetSettings) -> Result<Self, TargetError> {
        match settings {
            TargetSettings::Local(_) => Self::local().await,
            TargetSettings::Proxmox(p) => Ok(Self::from_fn(|suite| proxmox_identity(p, suite))),
        }
    }

    /// `local:` and the file name of each suite's current base image
    /// (`debian-12-<recipe hash>`, `imported-<sha256>`, `debian-13-…`,
    /// `imported-trixie-…`), or of what `oxbake base bootstrap --suite`
    /// would make.
    async fn local() -> Result<Self, TargetError> {
        let cache = base::default_cache_dir();
        let mut found = BTreeMap::new();
        for suite in Suite::ALL {
            let stem = base_meta::current(&cache, suite)
                .await?
                .and_then(|image| {
                    image
                        .path
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| BootstrapOptions::new(cache.clone(), suite).image_stem());
            found.insert(suite, format!("local:{stem}"));
        }
        Ok(BaseIdentities(found))
    }
}

/// `proxmox:ENDPOINT#VMID` for bookworm (its identity before suites),
/// `proxmox:ENDPOINT#VMID/SUITE` for the others, `#none/SUITE` where no
/// template is configured.
fn proxmox_identity(p: &ProxmoxSettings, suite: Suite) -> String {
    let vmid = p
        .base_template_of(suite)
        .map_or_else(|| "none".to_owned(), |v| v.to_string());
    match suite {
        Suite::Bookworm => format!("proxmox:{}#{vmid}", p.endpoint),
        other => format!("proxmox:{}#{vmid}/{other}", p.endpoint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn proxmox_identities_keep_bookworm_and_name_the_other_releases() {
        let text = "endpoint = \"https://pve:8006\"\nnodes = [\"pve1\"]\nstorage = \"s\"\n\
                    vmid_range = [9000, 9999]\nbase_template = 9000\ntoken_id = \"a@pve!b\"\n";
        let mut p: ProxmoxSettings = toml::from_str(text).unwrap();
        let bases = BaseIdentities::of_target(&TargetSettings::Proxmox(p.clone()))
            .await
            .unwrap();
        assert_eq!(bases.of(Suite::Bookworm), "proxmox:https://pve:8006#9000");
        assert_eq!(
            bases.of(Suite::Trixie),
            "proxmox:https://pve:8006#none/trixie"
        );
        p.base_templates.insert(Suite::Trixie, 9001);
        let bases = BaseIdentities::of_target(&TargetSettings::Proxmox(p))
            .await
            .unwrap();
        assert_eq!(
            bases.of(Suite::Trixie),
            "proxmox:https://pve:8006#9001/trixie"
        );
    }
}
