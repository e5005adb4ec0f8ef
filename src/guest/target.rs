//! Where a guest is and how patiently oxbake talks to it.

use std::net::SocketAddr;
use std::time::Duration;

use super::keys::{ClientKey, HostKeyPolicy};

/// A guest to log in to.
#[derive(Debug, Clone)]
pub struct GuestTarget {
    pub addr: SocketAddr,
    pub user: String,
    pub key: ClientKey,
    pub host_key: HostKeyPolicy,
    pub timing: Timing,
}

impl GuestTarget {
    pub fn new(
        addr: SocketAddr,
        user: impl Into<String>,
        key: ClientKey,
        host_key: HostKeyPolicy,
    ) -> Self {
        Self {
            addr,
            user: user.into(),
            key,
            host_key,
            timing: Timing::default(),
        }
    }

    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }
}

/// Deadlines and intervals of the SSH connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long the first connection may take, retries included (a VM that
    /// is still booting refuses or resets connections for a while).
    pub connect_deadline: Duration,
    /// The same after a lost connection (sshd restarting after hardening).
    pub reconnect_deadline: Duration,
    /// Pause between two connection attempts.
    pub retry_interval: Duration,
    /// One attempt's TCP connect + SSH handshake + login.
    pub attempt_timeout: Duration,
    /// Silence after which a keepalive is sent.
    pub keepalive_interval: Duration,
    /// Unanswered keepalives after which the connection counts as dead.
    pub keepalive_max: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            connect_deadline: Duration::from_secs(300),
            reconnect_deadline: Duration::from_secs(60),
            retry_interval: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(20),
            keepalive_interval: Duration::from_secs(5),
            keepalive_max: 3,
        }
    }
}

impl Timing {
    /// The longest a dead connection can stay unnoticed.
    pub fn dead_after(&self) -> Duration {
        self.keepalive_interval * (self.keepalive_max as u32 + 1)
    }
}
