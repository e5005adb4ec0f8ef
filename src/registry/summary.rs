//! [`ImageSummary`]: a record without its package and repository lists,
//! what `oxbake ls` shows. Reading one skips building the package list, the
//! bulk of a record, but checks the whole file as [`super::Registry::get`]
//! does.

use jiff::Timestamp;

use super::{Artifact, ImageRecord, Parent, Revocation, Sha256, Version};

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
            revoked: record.revoked,
        }
    }
}
