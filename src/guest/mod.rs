//! The guest module owns every conversation with a builder VM: one SSH
//! connection per build (russh), each step a channel on it, files over
//! SFTP. Lines a command prints go, redacted, to the progress handle and the
//! build log; failures name the guest and never hang.

mod collect;
mod command;
mod connect;
mod error;
mod helper;
mod keys;
mod lines;
mod redact;
mod session;
mod target;
mod transfer;

use std::net::SocketAddr;
use std::path::Path;

use async_trait::async_trait;

pub use command::{Command, DEFAULT_TIMEOUT, ExecOutput, ExitStatus, KILL_AFTER, quote};
pub use error::GuestError;
pub use keys::{ClientKey, HostKeyPair, HostKeyPolicy, fingerprint};
pub use lines::{LogSink, OutputSinks};
pub use redact::{REDACTED, Redactor};
pub use russh::keys::PublicKey;
pub use session::SshGuest;
pub use target::{GuestTarget, Timing};
pub use transfer::RemoteFile;

/// Makes guest sessions; the pipeline holds one of these.
#[async_trait]
pub trait GuestConnector: Send + Sync {
    async fn connect(
        &self,
        target: &GuestTarget,
        sinks: OutputSinks,
    ) -> Result<Box<dyn GuestSession>, GuestError>;
}

/// A logged-in guest.
#[async_trait]
pub trait GuestSession: Send {
    fn addr(&self) -> SocketAddr;

    /// Runs a command; a non-zero exit is data, not an error.
    async fn exec(&mut self, cmd: &Command) -> Result<ExecOutput, GuestError>;

    /// Writes `data` to `to` atomically, with its mode and owner.
    async fn upload(&mut self, data: &[u8], to: &RemoteFile) -> Result<(), GuestError>;

    /// Reads a remote file (as root).
    async fn download(&mut self, path: &str) -> Result<Vec<u8>, GuestError>;

    /// Cleans up and disconnects.
    async fn close(self: Box<Self>) -> Result<(), GuestError>;

    /// Runs a command and turns a non-zero exit into
    /// [`GuestError::CommandFailed`] quoting the end of stderr.
    async fn exec_checked(&mut self, cmd: &Command) -> Result<ExecOutput, GuestError> {
        let out = self.exec(cmd).await?;
        if out.status.success() {
            return Ok(out);
        }
        Err(GuestError::CommandFailed {
            addr: self.addr(),
            cmd: cmd.describe(&Redactor::new(&cmd.secrets)),
            status: out.status,
            stderr_tail: out.stderr_tail,
        })
    }

    /// Uploads a local file.
    async fn upload_file(&mut self, local: &Path, to: &RemoteFile) -> Result<(), GuestError> {
        let data = tokio::fs::read(local)
            .await
            .map_err(|source| GuestError::Io {
                path: local.display().to_string(),
                source,
            })?;
        self.upload(&data, to).await
    }
}

/// Connects over SSH with russh.
#[derive(Debug, Clone, Copy, Default)]
pub struct SshConnector;

#[async_trait]
impl GuestConnector for SshConnector {
    async fn connect(
        &self,
        target: &GuestTarget,
        sinks: OutputSinks,
    ) -> Result<Box<dyn GuestSession>, GuestError> {
        Ok(Box::new(SshGuest::connect(target, sinks).await?))
    }
}

#[async_trait]
impl GuestSession for SshGuest {
    fn addr(&self) -> SocketAddr {
        SshGuest::addr(self)
    }

    async fn exec(&mut self, cmd: &Command) -> Result<ExecOutput, GuestError> {
        let sinks = self.sinks.clone();
        self.run(cmd, &sinks).await
    }

    async fn upload(&mut self, data: &[u8], to: &RemoteFile) -> Result<(), GuestError> {
        self.put(data, to).await
    }

    async fn download(&mut self, path: &str) -> Result<Vec<u8>, GuestError> {
        self.get(path).await
    }

    async fn close(self: Box<Self>) -> Result<(), GuestError> {
        self.shutdown().await
    }
}
