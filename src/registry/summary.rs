//! [`ImageSummary`]: a record without its package and repository lists,
//! what `oxbake ls` shows. Reading one skips building the package list, the
//! bulk of a record, but checks the whole file as [`super::Registry::get`]
//! does.

use jiff::Timestamp;

use super::{Artifact, ImageRecord, Parent, Published, Revocation, Sha256, Version};

/// What a record and its summary both tell about an image: who it is, what
/// it was built from and where its template is; enough to plan a prune and
/// prove a template is the image's.
pub trait ImageHead {
    fn role(&self) -> &str;
    fn version(&self) -> &Version;
    fn inputs(&self) -> &Sha256;
    fn parent(&self) -> &Parent;
    /// The name of the target the image lives on.
    fn target(&self) -> &str;
    /// Where the image was built (on [`ImageHead::target`]).
    fn artifact(&self) -> &Artifact;
    /// Its copies on other targets (`oxbake publish`).
    fn published(&self) -> &[Published];

    /// `role@version`.
    fn id(&self) -> String {
        format!("{}@{}", self.role(), self.version())
    }

    /// Where the image is on the target named `target`: the built
    /// artifact on the target it was built on, else its published copy
    /// there, if any.
    fn artifact_on(&self, target: &str) -> Option<&Artifact> {
        if self.target() == target {
            return Some(self.artifact());
        }
        self.published()
            .iter()
            .find(|p| p.target == target)
            .map(|p| &p.artifact)
    }
}

/// [`ImageHead`] for types with the fields of the same names.
macro_rules! image_head {
    ($type:ty) => {
        impl ImageHead for $type {
            fn role(&self) -> &str {
                &self.role
            }
            fn version(&self) -> &Version {
                &self.version
            }
            fn inputs(&self) -> &Sha256 {
                &self.inputs
            }
            fn parent(&self) -> &Parent {
                &self.parent
            }
            fn target(&self) -> &str {
                &self.target
            }
            fn artifact(&self) -> &Artifact {
                &self.artifact
            }
            fn published(&self) -> &[Published] {
                &self.published
            }
        }
    };
}

image_head!(ImageRecord);
image_head!(ImageSummary);

/// One image version of one role, without its packages and repositories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    pub role: String,
    pub version: Version,
    pub inputs: Sha256,
    pub parent: Parent,
    pub target: String,
    pub created: Timestamp,
    pub artifact: Artifact,
    pub published: Vec<Published>,
    /// How many checks passed, out of how many.
    pub checks_passed: (usize, usize),
    pub revoked: Option<Revocation>,
}

impl ImageSummary {
    /// `role@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.role, self.version)
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked.is_some()
    }
}

impl From<ImageRecord> for ImageSummary {
    fn from(record: ImageRecord) -> Self {
        Self {
            checks_passed: record.checks_passed(),
            role: record.role,
            version: record.version,
            inputs: record.inputs,
            parent: record.parent,
            target: record.target,
            created: record.created,
            artifact: record.artifact,
            published: record.published,
            revoked: record.revoked,
        }
    }
}
