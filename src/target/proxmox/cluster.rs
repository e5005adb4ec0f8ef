//! Cluster-wide calls: `GET /cluster/nextid` and `GET /cluster/resources`.

use serde::Deserialize;

use super::form::Form;
use super::lenient;
use super::{PveClient, PveError};

/// One guest from `GET /cluster/resources?type=vm`. `status` and `template`
/// come from statistics and may lag; `config`/`status/current` are the truth.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Resource {
    #[serde(deserialize_with = "lenient::int")]
    pub vmid: u64,
    #[serde(default)]
    pub name: Option<String>,
    pub node: String,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub template: bool,
    /// `;`-separated, lower-cased and sorted by Proxmox.
    #[serde(default)]
    pub tags: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default)]
    pub pool: Option<String>,
}

impl Resource {
    pub fn tag_list(&self) -> Vec<String> {
        split_tags(self.tags.as_deref().unwrap_or(""))
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tag_list().iter().any(|t| t.eq_ignore_ascii_case(tag))
    }
}

/// Splits a tag list the way Proxmox does (`;`, `,` or white space).
pub fn split_tags(text: &str) -> Vec<String> {
    text.split(|c: char| c == ';' || c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

impl PveClient {
    /// The cluster's next free VMID (Proxmox answers with a string).
    pub async fn next_id(&self) -> Result<u32, PveError> {
        let v: serde_json::Value = self.get("/cluster/nextid", Form::new()).await?;
        as_vmid("GET /cluster/nextid", &v)
    }

    /// Whether `vmid` is free: `nextid?vmid=N` answers 400 when it is taken.
    pub async fn vmid_is_free(&self, vmid: u32) -> Result<bool, PveError> {
        let query = Form::new().int("vmid", vmid);
        match self
            .get::<serde_json::Value>("/cluster/nextid", query)
            .await
        {
            Ok(_) => Ok(true),
            Err(PveError::Parameter { errors, .. }) if errors.contains_key("vmid") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every QEMU guest and template of the cluster.
    pub async fn vm_resources(&self) -> Result<Vec<Resource>, PveError> {
        let all: Vec<Resource> = self
            .get("/cluster/resources", Form::new().text("type", "vm"))
            .await?;
        Ok(all.into_iter().filter(|r| r.kind == "qemu").collect())
    }
}

fn as_vmid(what: &str, v: &serde_json::Value) -> Result<u32, PveError> {
    lenient::as_int(v)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| PveError::Decode {
            what: what.to_string(),
            message: format!("expected a vmid, got {v}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_decode_with_strings_and_flags() {
        let r: Resource = serde_json::from_value(serde_json::json!({
            "id": "qemu/9000", "vmid": "9000", "node": "pve1", "type": "qemu",
            "template": 1, "tags": "oxbake;role-web", "status": "stopped", "maxmem": 1
        }))
        .unwrap();
        assert_eq!(r.vmid, 9000);
        assert!(r.template);
        assert!(r.has_tag("ROLE-web"));
        assert_eq!(split_tags("a, b;c  d"), ["a", "b", "c", "d"]);
    }
}
