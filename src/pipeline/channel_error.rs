//! Why a channel operation (promote, rollback, revoke, prune) refused or
//! failed. Every message names the image (`ROLE@VERSION`) it is about.

use super::smoke::SmokeError;
use crate::registry::RegistryError;
use crate::target::TargetError;

#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The target the image lives on could not be opened.
    #[error(transparent)]
    Open(#[from] super::open::OpenError),
    #[error("image `{image}`: {failed} of {total} checks did not pass at build time: {names}")]
    ChecksFailed {
        image: String,
        failed: usize,
        total: usize,
        names: String,
    },
    #[error("image `{image}` is revoked ({reason}): it cannot be promoted")]
    Revoked { image: String, reason: String },
    #[error("image `{image}`: unknown channel `{channel}`; oxbake.toml defines {known}")]
    UnknownChannel {
        image: String,
        channel: String,
        known: String,
    },
    #[error("role `{role}`: unknown channel `{channel}`; oxbake.toml defines {known}")]
    UnknownRoleChannel {
        role: String,
        channel: String,
        known: String,
    },
    #[error(
        "image `{image}` is not in channel `{previous}`, which comes before `{channel}`: promote it there first, or use --force --reason"
    )]
    NotInPreviousChannel {
        image: String,
        channel: String,
        previous: String,
    },
    #[error("image `{image}`: --force needs --reason (it is recorded in the history)")]
    ForceWithoutReason { image: String },
    #[error("image `{image}`: role `{role}` has no recipe in recipes/")]
    NoRecipe { image: String, role: String },
    #[error("image `{image}`: the smoke test could not run")]
    Smoke {
        image: String,
        #[source]
        source: Box<SmokeError>,
    },
    #[error("image `{image}`: the smoke test failed: {names}")]
    SmokeFailed { image: String, names: String },
    /// The channel moved in images/channels.toml (the record); only the
    /// target's marks lag behind, and a promote of the channel's version
    /// (no smoke test: it is already there) sets them.
    #[error(
        "image `{image}`: cannot update the channel tags of its template; channel `{channel}` \
         of `{role}` already points at `{current}` in images/channels.toml: run `oxbake promote \
         {role} {current} --to {channel}` to set the tags again"
    )]
    Tags {
        image: String,
        role: String,
        channel: String,
        current: String,
        #[source]
        source: Box<TargetError>,
    },
    #[error("image `{image}`: cannot take the role's lock")]
    Lock {
        image: String,
        #[source]
        source: Box<crate::pipeline::BuildError>,
    },
    #[error("cannot list the VMs of the target")]
    ListVms(#[source] Box<TargetError>),
    /// The operator interrupted; the smoke VM was removed, the channel left.
    #[error("image `{image}`: promotion interrupted; the channel was not changed")]
    Interrupted { image: String },
}

impl PromoteError {
    /// Whether the operator interrupted (exit code 130).
    pub fn is_interrupted(&self) -> bool {
        matches!(
            self,
            Self::Interrupted { .. } | Self::Open(super::open::OpenError::Interrupted)
        )
    }

    /// Whether this is invalid input (exit code 2) rather than a refusal or
    /// a failure (exit code 1).
    pub fn is_invalid_input(&self) -> bool {
        match self {
            Self::Registry(e) => e.is_invalid_input(),
            Self::ForceWithoutReason { .. } => true,
            _ => false,
        }
    }
}
