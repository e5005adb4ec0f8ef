//! What the cluster and the token can do: `GET /version` (the PVE release)
//! and `GET /access/permissions?path=P` (the token's effective privileges
//! on one ACL path, inherited ones included: Proxmox computes them).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::form::Form;
use super::{PveClient, PveError};

/// A PVE release, `MAJOR.MINOR` (`GET /version`'s `release`, or the start
/// of its `version`, `8.4.1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PveRelease {
    pub major: u32,
    pub minor: u32,
}

impl PveRelease {
    /// `8.2`, `8.3.6` (the point release is ignored) or `9.0`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.trim().split(['.', '-', '~']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
        Some(Self { major, minor })
    }
}

impl fmt::Display for PveRelease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// `GET /version`.
#[derive(Debug, Clone, Deserialize)]
struct VersionAnswer {
    #[serde(default)]
    release: Option<String>,
    #[serde(default)]
    version: Option<String>,
}

impl PveClient {
    /// The release the API's node runs.
    pub async fn release(&self) -> Result<PveRelease, PveError> {
        let answer: VersionAnswer = self.get("/version", Form::new()).await?;
        let text = answer.release.or(answer.version).unwrap_or_default();
        PveRelease::parse(&text).ok_or_else(|| PveError::Decode {
            what: "GET /version".into(),
            message: format!("unreadable release `{text}`"),
        })
    }

    /// The privileges the token holds on `path` (`/storage/local`,
    /// `/vms`, `/pool/oxbake`), inherited ones included.
    pub async fn privileges(&self, path: &str) -> Result<Vec<String>, PveError> {
        let answer: BTreeMap<String, BTreeMap<String, Value>> = self
            .get("/access/permissions", Form::new().text("path", path))
            .await?;
        Ok(answer
            .get(path)
            .map(|privs| privs.keys().cloned().collect())
            .unwrap_or_default())
    }
}

/// A privilege an operation needs on an ACL path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub path: String,
    pub privilege: &'static str,
    /// What needs it, for the message (`the upload`).
    pub for_what: &'static str,
}

/// The needs that `held` (path → privileges) does not meet.
pub fn missing<'a>(needs: &'a [Need], held: &BTreeMap<String, Vec<String>>) -> Vec<&'a Need> {
    needs
        .iter()
        .filter(|n| {
            !held
                .get(&n.path)
                .is_some_and(|privs| privs.iter().any(|p| p == n.privilege))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_are_read_and_ordered() {
        let r = |t| PveRelease::parse(t).unwrap();
        assert_eq!(r("8.4"), PveRelease { major: 8, minor: 4 });
        assert_eq!(r("8.3.6"), PveRelease { major: 8, minor: 3 });
        assert_eq!(r("9"), PveRelease { major: 9, minor: 0 });
        assert!(r("8.1") < r("8.2") && r("8.10") > r("8.9") && r("9.0") > r("8.4"));
        assert_eq!(PveRelease::parse("pve"), None);
        assert_eq!(r("8.2").to_string(), "8.2");
    }

    #[test]
    fn missing_privileges_are_named_per_path() {
        let needs = [
            Need {
                path: "/storage/local".into(),
                privilege: "Datastore.AllocateTemplate",
                for_what: "the upload",
            },
            Need {
                path: "/vms".into(),
                privilege: "VM.Allocate",
                for_what: "the template VM",
            },
        ];
        let held = BTreeMap::from([(
            "/storage/local".to_string(),
            vec![
                "Datastore.Audit".to_string(),
                "Datastore.AllocateTemplate".into(),
            ],
        )]);
        let gaps = missing(&needs, &held);
        assert_eq!(gaps, [&needs[1]]);
    }
}
