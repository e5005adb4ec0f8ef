//! The error type every target operation returns.

use std::path::{Path, PathBuf};

/// Why a target operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("`{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("command `{program}` could not be started: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("command `{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error(
        "no {0} base image: run `oxbake base bootstrap --suite {0}` or `oxbake base import … --suite {0}`"
    )]
    NoBaseImage(crate::suite::Suite),
    #[error("no base template for {0}: set `base_templates.{0}` of the proxmox target")]
    NoBaseTemplate(crate::suite::Suite),
    #[error(transparent)]
    Import(#[from] super::local::import::ImportError),
    #[error("invalid sha256 `{0}`: expected 64 hexadecimal digits")]
    InvalidSha256(String),
    #[error("image `{image}` cannot be inspected: {why}")]
    Inspect { image: String, why: String },
    #[error("`{origin}`: checksum mismatch: expected {expected}, got {actual}")]
    ChecksumMismatch {
        origin: String,
        expected: String,
        actual: String,
    },
    #[error(
        "`{}`: the template does not match its record: its sha256 is {actual}, the record says {expected}",
        path.display()
    )]
    TemplateChanged {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("download `{url}`: {message}")]
    Download { url: String, message: String },
    #[error("vm `{0}` already exists")]
    VmExists(String),
    #[error("vm `{0}` does not exist")]
    VmNotFound(String),
    #[error("vm `{0}` is running; stop it first")]
    VmRunning(String),
    #[error("vm `{0}` is not running")]
    VmNotRunning(String),
    #[error("template `{0}` already exists")]
    TemplateExists(String),
    #[error("template `{0}` does not exist")]
    TemplateNotFound(String),
    #[error("template `{name}` is still used by {user}")]
    TemplateInUse { name: String, user: String },
    #[error("template {template} is not the one the record names: {why}")]
    NotTheRecordedTemplate { template: String, why: String },
    #[error(
        "template `{name}` belongs to another target (an image baked on the local target \
         reaches a proxmox one with `oxbake publish`)"
    )]
    ForeignArtifact { name: String },
    #[error("invalid name `{0}`: use letters, digits, `.`, `_` and `-`")]
    InvalidName(String),
    #[error("vm `{name}`: {what}: no answer within {secs}s")]
    Timeout {
        name: String,
        what: String,
        secs: u64,
    },
    /// A wait on the VM (its boot, its SSH) reached its deadline.
    #[error("vm `{name}`: {expired}")]
    Expired {
        name: String,
        expired: Box<super::deadline::Expired>,
    },
    #[error("vm `{name}`: qmp: {message}")]
    Qmp { name: String, message: String },
    #[error("vm `{name}` did not start: {message}")]
    Start { name: String, message: String },
    #[error(transparent)]
    Proxmox(#[from] super::proxmox::PveError),
    #[error("`{}`: invalid state file: {message}", path.display())]
    State { path: PathBuf, message: String },
    #[error("segment `{segment}`: {message}")]
    Segment { segment: String, message: String },
    #[error(
        "segment `{segment}`: its switch is not running while vm(s) {vms} are attached to it \
         (they lost their network); stop them, then start them again"
    )]
    SegmentDown { segment: String, vms: String },
    /// Refused start: another running VM holds the address on the segment.
    #[error("address {address} on segment `{segment}` is held by running vm `{holder}`")]
    AddressInUse {
        address: std::net::Ipv4Addr,
        segment: String,
        holder: String,
    },
    #[error(
        "template `{name}`: tags read back as `{found}`, expected the channel tags `{expected}`"
    )]
    TagsNotApplied {
        name: String,
        expected: String,
        found: String,
    },
}

impl TargetError {
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}
