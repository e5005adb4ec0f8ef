//! `images/ROLE/VERSION.toml`: the record of one successful build.
//!
//! A record is written once, when the build has succeeded, and afterwards only
//! ever gains a `[revoked]` table or a `[[published]]` entry (the same image
//! copied to another target by `oxbake publish`). [`super::Registry`] offers
//! no other way to change one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::fields::{Parent, Sha256, rfc3339};
use super::{RegistryError, Version, toml_file};

/// One image version of one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRecord {
    pub role: String,
    pub version: Version,
    /// The role's inputs hash (see `oxbake inputs ROLE`).
    pub inputs: Sha256,
    pub parent: Parent,
    /// The name of the target (from oxbake.toml) the image lives on.
    pub target: String,
    #[serde(with = "rfc3339")]
    pub created: Timestamp,
    pub artifact: Artifact,
    /// Package repository metadata seen by the build: source (URL and suite)
    /// to the sha256 of its `InRelease` file.
    #[serde(default)]
    pub repositories: BTreeMap<String, Sha256>,
    /// Installed packages: name to version.
    #[serde(default)]
    pub packages: BTreeMap<String, String>,
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// What the builder VM was, so smoke tests can prove a clone is not it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<BuilderIdentity>,
    /// The bytes the template takes on its storage (local: the qcow2 file's
    /// allocated size); absent where the target cannot tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// How long each phase of the bake took, in order; absent in records
    /// written before oxbake kept timings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timings: Vec<PhaseTiming>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
    /// The same image on other targets (`oxbake publish`), one entry per
    /// target; absent in records of images never published.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<Published>,
}

/// A second place of the same image: `oxbake publish` flattened the built
/// template, shipped it to `target` and recorded where it is there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// The name of the target (from oxbake.toml) the copy lives on.
    pub target: String,
    #[serde(with = "rfc3339")]
    pub when: Timestamp,
    /// The sha256 of the flattened qcow2 that was shipped (the target
    /// verified it on arrival).
    pub sha256: Sha256,
    pub artifact: Artifact,
}

/// How long one phase of a bake took, from its start to its end as the
/// build saw them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseTiming {
    /// The phase as the build log's section heading names it: `boot and
    /// connect over SSH`, or for a recipe step `step 2/5: common packages`.
    pub phase: String,
    /// A recipe step's number, from 1 (none for the other phases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// Wall-clock milliseconds.
    pub millis: u64,
}

/// The builder VM's machine-id and SSH host key fingerprint (neither is
/// secret). A clone of the image must have neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuilderIdentity {
    pub machine_id: String,
    pub host_key: String,
}

/// Where the built template is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Artifact {
    /// A read-only qcow2 file of the local target.
    Local { path: PathBuf, sha256: Sha256 },
    /// A template on a Proxmox VE node.
    Proxmox {
        node: String,
        vmid: u32,
        template: String,
    },
}

impl Artifact {
    /// Where the template is, for messages: `NODE/VMID (`NAME`)` or the
    /// file.
    pub fn describe(&self) -> String {
        match self {
            Artifact::Proxmox {
                node,
                vmid,
                template,
            } => format!("{node}/{vmid} (`{template}`)"),
            Artifact::Local { path, .. } => format!("`{}`", path.display()),
        }
    }
}

/// The outcome of one of the role's checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckResult {
    pub name: String,
    pub command: String,
    pub passed: bool,
    #[serde(default)]
    pub detail: String,
}

/// Why, when and by whom an image was withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    pub reason: String,
    #[serde(with = "rfc3339")]
    pub when: Timestamp,
    pub who: String,
}

/// What a build knows about its image before the registry gives it a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewImage {
    pub inputs: Sha256,
    pub parent: Parent,
    pub target: String,
    pub artifact: Artifact,
    pub repositories: BTreeMap<String, Sha256>,
    pub packages: BTreeMap<String, String>,
    pub checks: Vec<CheckResult>,
    pub builder: Option<BuilderIdentity>,
    pub size: Option<u64>,
}

impl ImageRecord {
    /// The record of `image` as version `version` of `role`, created at `created`.
    pub fn new(role: &str, version: Version, created: Timestamp, image: NewImage) -> Self {
        Self {
            role: role.into(),
            version,
            inputs: image.inputs,
            parent: image.parent,
            target: image.target,
            created: super::fields::whole_seconds(created),
            artifact: image.artifact,
            repositories: image.repositories,
            packages: image.packages,
            checks: image.checks,
            builder: image.builder,
            size: image.size,
            timings: Vec::new(),
            revoked: None,
            published: Vec::new(),
        }
    }

    /// Parses a record from `text`, the contents of the file shown as
    /// `label`. Errors point at `label:line:column`.
    pub fn parse(label: &Path, text: &str) -> Result<Self, RegistryError> {
        super::record_text::parse(label, text)
    }

    /// `role@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.role, self.version)
    }

    /// How many checks passed, out of how many.
    pub fn checks_passed(&self) -> (usize, usize) {
        let passed = self.checks.iter().filter(|c| c.passed).count();
        (passed, self.checks.len())
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked.is_some()
    }

    /// A record must describe the image its path names; `text` is the file
    /// it was parsed from, to point at the wrong field.
    pub(crate) fn check_identity(
        &self,
        label: &Path,
        text: &str,
        role: &str,
        version: &Version,
    ) -> Result<(), RegistryError> {
        #[derive(Deserialize)]
        struct Head {
            role: toml::Spanned<String>,
            version: toml::Spanned<String>,
        }
        let head = || toml::from_str::<Head>(text).ok();
        let (field, span) = if self.role != role {
            ("role", head().map(|h| h.role.span()))
        } else if self.version != *version {
            ("version", head().map(|h| h.version.span()))
        } else {
            return Ok(());
        };
        let message = format!(
            "{field} does not match the file's place: expected `{role}@{version}`, found `{}`",
            self.id()
        );
        let offset = span.map_or(0, |s| s.start);
        Err(toml_file::parse_error(label, text, offset, &message))
    }
}
