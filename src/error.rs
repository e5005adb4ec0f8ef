//! The error a command ends with, and the exit code it maps to.

use crate::diag::Diagnostics;
use crate::pipeline::{BuildError, PromoteError, PruneError};
use crate::project::ProjectError;
use crate::registry::RegistryError;
use crate::role::inputs::InputsError;
use crate::target::TargetError;
use crate::vault::VaultError;

/// Exit codes of the command-line contract.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILED: i32 = 1;
    pub const INVALID: i32 = 2;
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input problems, each already pinned to its place.
    #[error("{} problem(s) found", .0.len())]
    Invalid(Diagnostics),
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The command line names something that is not there.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Inputs(#[from] InputsError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Build(Box<BuildError>),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Promote(Box<PromoteError>),
    #[error(transparent)]
    Prune(#[from] PruneError),
    /// An operation that ran and failed, said in a sentence.
    #[error("{0}")]
    Failed(String),
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Deploy(Box<crate::pipeline::deploy::DeployError>),
    #[error(transparent)]
    Publish(Box<crate::pipeline::publish::PublishError>),
}

impl From<crate::pipeline::publish::PublishError> for Error {
    fn from(e: crate::pipeline::publish::PublishError) -> Self {
        Error::Publish(Box::new(e))
    }
}

impl From<crate::pipeline::deploy::DeployError> for Error {
    fn from(e: crate::pipeline::deploy::DeployError) -> Self {
        Error::Deploy(Box::new(e))
    }
}

impl From<crate::config::UnknownTarget> for Error {
    fn from(e: crate::config::UnknownTarget) -> Self {
        Error::Usage(e.to_string())
    }
}

impl From<crate::pipeline::open::OpenError> for Error {
    fn from(e: crate::pipeline::open::OpenError) -> Self {
        use crate::pipeline::open::OpenError;
        match e {
            OpenError::Unknown(e) => e.into(),
            OpenError::Target(e) => Error::Target(e),
            OpenError::Interrupted => Error::Interrupted,
        }
    }
}

impl From<BuildError> for Error {
    fn from(e: BuildError) -> Self {
        Error::Build(Box::new(e))
    }
}

impl From<PromoteError> for Error {
    fn from(e: PromoteError) -> Self {
        match e {
            // Opening the target ends a command alike wherever it happens.
            PromoteError::Open(e) => e.into(),
            e => Error::Promote(Box::new(e)),
        }
    }
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_) | Error::Project(_) | Error::Usage(_) => exit::INVALID,
            Error::Registry(e) if e.is_invalid_input() => exit::INVALID,
            Error::Target(TargetError::Proxmox(e)) if e.is_invalid_input() => exit::INVALID,
            // A malformed --sha256 is a bad command line, not a failed import.
            Error::Target(TargetError::InvalidSha256(_)) => exit::INVALID,
            // A FIFO, a device or a folder can never be imported.
            Error::Target(TargetError::Import(e)) if e.is_invalid_input() => exit::INVALID,
            Error::Inputs(_) | Error::Registry(_) | Error::Target(_) => exit::FAILED,
            Error::Vault(e) if e.is_invalid_input() => exit::INVALID,
            Error::Vault(_) => exit::FAILED,
            Error::Promote(e) if e.is_interrupted() => exit::INTERRUPTED,
            Error::Promote(e) if e.is_invalid_input() => exit::INVALID,
            Error::Promote(_) => exit::FAILED,
            Error::Prune(PruneError::Registry(e)) if e.is_invalid_input() => exit::INVALID,
            Error::Prune(_) | Error::Failed(_) => exit::FAILED,
            Error::Interrupted => exit::INTERRUPTED,
            Error::Deploy(e) if e.is_interrupted() => exit::INTERRUPTED,
            Error::Deploy(e) if e.is_invalid_input() => exit::INVALID,
            Error::Deploy(_) => exit::FAILED,
            Error::Publish(e) if e.is_interrupted() => exit::INTERRUPTED,
            Error::Publish(e) if e.is_invalid_input() => exit::INVALID,
            Error::Publish(_) => exit::FAILED,
            Error::Build(e) if e.is_interrupted() => exit::INTERRUPTED,
            Error::Build(e) => match e.as_ref() {
                BuildError::Registry(e) if e.is_invalid_input() => exit::INVALID,
                BuildError::Secrets(_) => exit::INVALID,
                _ => exit::FAILED,
            },
        }
    }

    /// The `error` member of the `--json` document of a failed run:
    /// `message` (the error and its causes on one line), `exit` (the exit
    /// code) and `problems` (each input problem as path, line, column and
    /// message; empty unless the input was invalid).
    pub fn document(&self) -> serde_json::Value {
        let problems: Vec<serde_json::Value> = match self {
            Error::Invalid(problems) => problems
                .clone()
                .into_sorted()
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "path": d.path,
                        "line": d.line,
                        "column": d.column,
                        "message": d.message,
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        serde_json::json!({
            "message": crate::error_chain::chain(self),
            "exit": self.exit_code(),
            "problems": problems,
        })
    }

    /// The lines to show the operator: each problem on its own, or the
    /// message followed by its causes.
    pub fn lines(&self) -> Vec<String> {
        if let Error::Invalid(problems) = self {
            return problems
                .clone()
                .into_sorted()
                .iter()
                .map(ToString::to_string)
                .collect();
        }
        vec![format!("error: {}", crate::error_chain::chain(self))]
    }
}
