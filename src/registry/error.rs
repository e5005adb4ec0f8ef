//! The error type of the image registry.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while reading or changing `images/`.
///
/// Every message names the file or the image it is about; a parse error reads
/// `images/ui/2026.11.25.1.toml:3:5: message`, like every other invalid input.
/// As elsewhere in oxbake, `Display` leaves out the source error: the CLI
/// prints the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("cannot encode `{path}` as TOML: {message}")]
    Encode { path: PathBuf, message: String },
    #[error("registry `{root}` is locked by another oxbake process{} (waited {}s)", holder_text(*pid), waited.as_secs())]
    Locked {
        root: PathBuf,
        pid: Option<u32>,
        waited: Duration,
    },
    #[error(
        "invalid role name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"
    )]
    InvalidRole { name: String },
    #[error(
        "invalid channel name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"
    )]
    InvalidChannel { name: String },
    #[error("invalid image version `{text}`: {reason}")]
    InvalidVersion { text: String, reason: String },
    #[error("invalid image reference `{text}`: expected ROLE or ROLE@VERSION")]
    InvalidReference { text: String },
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidField {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("image `{role}@{version}` already exists in `{path}`")]
    AlreadyExists {
        role: String,
        version: String,
        path: PathBuf,
    },
    #[error("image `{role}@{version}` not found: `{path}` does not exist")]
    NotFound {
        role: String,
        version: String,
        path: PathBuf,
    },
    #[error("`{path}`: the name of an image record must be VERSION.toml (YYYY.MM.DD.N)")]
    StrayFile { path: PathBuf },
    #[error("role `{role}` has no image versions in `{dir}`")]
    NoVersions { role: String, dir: PathBuf },
    #[error("image `{role}@{version}` is already revoked ({reason})")]
    AlreadyRevoked {
        role: String,
        version: String,
        reason: String,
    },
    #[error("image `{role}@{version}` is revoked ({reason}): it cannot go to channel `{channel}`")]
    Revoked {
        role: String,
        version: String,
        channel: String,
        reason: String,
    },
    #[error(
        "image `{role}@{version}` is being removed by a prune that did not finish (its template may be gone): it cannot go to channel `{channel}`"
    )]
    BeingRemoved {
        role: String,
        version: String,
        channel: String,
    },
    #[error("image `{image}` cannot be published to target `{target}`: {why}")]
    NotPublishable {
        image: String,
        target: String,
        why: String,
    },
    #[error("image `{image}` is already published to target `{target}` as {at}")]
    AlreadyPublished {
        image: String,
        target: String,
        at: String,
    },
    #[error("channel `{channel}` of role `{role}` has no earlier usable version to roll back to")]
    NothingToRollBack { role: String, channel: String },
    #[error("image `{role}@{version}` is in channel(s) {channels}: it cannot be removed")]
    InChannel {
        role: String,
        version: String,
        channels: String,
    },
}

fn holder_text(pid: Option<u32>) -> String {
    pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
}

impl RegistryError {
    /// Whether this is invalid input (exit code 2): a file or name the
    /// operator must fix, rather than an operation that failed (exit code 1).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::Parse { .. }
                | Self::StrayFile { .. }
                | Self::InvalidRole { .. }
                | Self::InvalidChannel { .. }
                | Self::InvalidVersion { .. }
                | Self::InvalidReference { .. }
                | Self::InvalidField { .. }
        )
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
