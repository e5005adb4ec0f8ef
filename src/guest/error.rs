//! Errors of the guest module. Every message names the guest address in
//! backticks; command text and output in messages are already redacted.

use std::net::SocketAddr;
use std::time::Duration;

use super::command::ExitStatus;

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    /// The guest never accepted an SSH session before the deadline.
    #[error(
        "guest `{addr}`: no ssh session after {attempts} attempts in {:.1}s: {last}",
        elapsed.as_secs_f64()
    )]
    Connect {
        addr: SocketAddr,
        attempts: u32,
        elapsed: Duration,
        last: String,
    },

    #[error("guest `{addr}`: host key mismatch: expected {expected}, got {got}")]
    HostKeyMismatch {
        addr: SocketAddr,
        expected: String,
        got: String,
    },

    #[error("guest `{addr}`: login as `{user}` refused (public key not accepted)")]
    AuthFailed { addr: SocketAddr, user: String },

    #[error("guest `{addr}`: ssh: {message}")]
    Ssh { addr: SocketAddr, message: String },

    #[error("guest `{addr}`: connection lost while running `{cmd}`")]
    ConnectionLost { addr: SocketAddr, cmd: String },

    #[error("guest `{addr}`: `{cmd}` timed out after {:.1}s and was killed", timeout.as_secs_f64())]
    Timeout {
        addr: SocketAddr,
        cmd: String,
        timeout: Duration,
    },

    #[error(
        "guest `{addr}`: `{cmd}` failed with {status}{}",
        tail_suffix(stderr_tail)
    )]
    CommandFailed {
        addr: SocketAddr,
        cmd: String,
        status: ExitStatus,
        stderr_tail: String,
    },

    #[error("guest `{addr}`: sftp on `{path}`: {message}")]
    Sftp {
        addr: SocketAddr,
        path: String,
        message: String,
    },

    #[error("guest `{addr}`: `{path}` arrived corrupted: sha256 expected {expected}, got {got}")]
    Integrity {
        addr: SocketAddr,
        path: String,
        expected: String,
        got: String,
    },

    #[error("guest `{addr}`: transfer of `{path}` failed: {message}")]
    Transfer {
        addr: SocketAddr,
        path: String,
        message: String,
    },

    #[error("invalid {what} `{value}`: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error("ssh key: {0}")]
    Key(String),

    #[error("cannot read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn tail_suffix(tail: &str) -> String {
    let tail = tail.trim_end();
    if tail.is_empty() {
        String::new()
    } else {
        format!("; stderr ends with:\n{tail}")
    }
}

impl GuestError {
    /// True when the failure means the SSH connection itself is gone, so
    /// that a fresh connection may succeed.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Self::ConnectionLost { .. } | Self::Ssh { .. })
    }
}
