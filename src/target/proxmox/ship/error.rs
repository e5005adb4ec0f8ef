//! Why shipping an image to Proxmox was refused or failed. Refusals come
//! before anything is uploaded and say what the cluster lacks; failures
//! name the step and the object (volume, VM).

use super::super::PveError;
use super::super::access::PveRelease;

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(
        "proxmox `{endpoint}` runs PVE {found}: shipping an image needs PVE {needed} or later \
         (disk images uploaded as `import` content, disks made with `import-from`); \
         nothing was uploaded"
    )]
    TooOld {
        endpoint: String,
        found: PveRelease,
        needed: PveRelease,
    },
    #[error(
        "storage `{storage}` on node `{node}` does not take `import` content (it takes \
         `{content}`): add `import` to its content types, or set `import_storage` to a \
         file-based storage that takes it; nothing was uploaded"
    )]
    NoImportContent {
        storage: String,
        node: String,
        content: String,
    },
    #[error("token `{token}` lacks {missing}; nothing was uploaded")]
    MissingPrivileges { token: String, missing: String },
    #[error("{what}")]
    Step {
        what: String,
        #[source]
        source: PveError,
    },
    #[error(
        "invalid name `{0}` for an import volume or a VM: use letters, digits, `.`, `_` and `-`"
    )]
    InvalidName(String),
}

impl ShipError {
    pub(crate) fn step(what: impl Into<String>) -> impl FnOnce(PveError) -> ShipError {
        let what = what.into();
        move |source| ShipError::Step { what, source }
    }

    /// The message and every cause beneath it, on one line.
    pub fn chained(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cause = e.source();
        }
        text
    }

    /// The Proxmox error beneath, if any.
    pub fn pve(&self) -> Option<&PveError> {
        match self {
            ShipError::Step { source, .. } => Some(source),
            _ => None,
        }
    }
}
