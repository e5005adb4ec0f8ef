//! Why `oxbake publish` refused or failed, naming the image and the target.

use crate::config::UnknownTarget;
use crate::pipeline::BuildError;
use crate::registry::RegistryError;
use crate::target::TargetError;
use crate::target::proxmox::ShipError;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    UnknownTarget(#[from] UnknownTarget),
    #[error(
        "target `{target}` is not a proxmox target: `oxbake publish` ships images baked on \
         the local target to Proxmox VE"
    )]
    NotProxmox { target: String },
    #[error(
        "image `{image}` was built on target `{built_on}`, not a local one: `oxbake publish` \
         ships images baked on the local target"
    )]
    NotLocal { image: String, built_on: String },
    #[error("image `{image}` was built on target `{target}`: there is nothing to publish")]
    SameTarget { image: String, target: String },
    #[error("image `{image}` cannot be published: it is revoked ({reason})")]
    Revoked { image: String, reason: String },
    #[error("image `{image}`: its template file `{}` cannot be read", path.display())]
    LocalFile {
        image: String,
        path: std::path::PathBuf,
        #[source]
        source: Box<TargetError>,
    },
    #[error(
        "image `{image}`: the template file `{}` is not the recorded image (sha256 {actual}, \
         the record says {expected}); nothing was published",
        path.display()
    )]
    NotTheRecordedFile {
        image: String,
        path: std::path::PathBuf,
        expected: String,
        actual: String,
    },
    #[error("image `{image}`: flattening its template into one qcow2 failed")]
    Flatten {
        image: String,
        #[source]
        source: Box<TargetError>,
    },
    #[error("target `{target}`")]
    Open {
        target: String,
        #[source]
        source: Box<TargetError>,
    },
    #[error("image `{image}`: cannot tell whether its copy on `{target}` is still there")]
    Verify {
        image: String,
        target: String,
        #[source]
        source: Box<TargetError>,
    },
    #[error("publishing `{image}` to `{target}`")]
    Ship {
        image: String,
        target: String,
        #[source]
        source: Box<ShipError>,
    },
    #[error("publishing `{image}` to `{target}`: making the template failed")]
    Template {
        image: String,
        target: String,
        #[source]
        source: Box<TargetError>,
    },
    #[error("image `{image}`: the role's lock")]
    Lock {
        image: String,
        #[source]
        source: Box<BuildError>,
    },
    #[error("publishing `{image}` was interrupted; what it had made was removed")]
    Interrupted { image: String },
}

impl PublishError {
    /// A problem with the command line or the project (exit 2).
    pub fn is_invalid_input(&self) -> bool {
        match self {
            Self::Registry(e) => e.is_invalid_input(),
            Self::UnknownTarget(_)
            | Self::NotProxmox { .. }
            | Self::NotLocal { .. }
            | Self::SameTarget { .. } => true,
            Self::Open { source, .. } => {
                matches!(source.as_ref(), TargetError::Proxmox(e) if e.is_invalid_input())
            }
            _ => false,
        }
    }

    pub fn is_interrupted(&self) -> bool {
        matches!(self, Self::Interrupted { .. })
    }
}
