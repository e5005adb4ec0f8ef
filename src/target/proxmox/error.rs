//! What can go wrong when talking to Proxmox VE, classified the way a caller
//! needs to react: retry later (transient, locked), fix the configuration
//! (auth, permission, parameters), or treat the object as gone (not found).
//!
//! Proxmox answers every `die` with HTTP 500, so "not found" and "locked"
//! are recognised by their message text (see [`classify`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::target::deadline::span;

/// An error from the Proxmox client. `what` names the request
/// (`POST /nodes/pve1/qemu/100/clone`) or the task (`task UPID:…`). The
/// token secret never appears in any variant.
#[derive(Debug, thiserror::Error)]
pub enum PveError {
    #[error("proxmox `{what}`: not found ({status}): {message}")]
    NotFound {
        what: String,
        status: u16,
        message: String,
    },
    #[error("proxmox `{what}`: locked{}: {message}", code(*status))]
    Locked {
        what: String,
        status: Option<u16>,
        message: String,
    },
    #[error("proxmox `{what}`: permission denied ({status}): {message}")]
    Permission {
        what: String,
        status: u16,
        message: String,
    },
    #[error(
        "proxmox `{what}`: authentication failed ({status}): {message}; check the token id and its secret"
    )]
    Auth {
        what: String,
        status: u16,
        message: String,
    },
    #[error(
        "proxmox `{what}`: invalid parameters ({status}): {}",
        params(message, errors)
    )]
    Parameter {
        what: String,
        status: u16,
        message: String,
        errors: BTreeMap<String, String>,
    },
    #[error("proxmox `{what}`: server error ({status}): {message}")]
    Server {
        what: String,
        status: u16,
        message: String,
    },
    #[error("proxmox `{what}`: transient failure{}: {message}", code(*status))]
    Transient {
        what: String,
        status: Option<u16>,
        message: String,
    },
    /// No (whole) answer within the request timeout. `attempts` > 1 for a
    /// GET retried; any other request may have been carried out anyway.
    #[error(
        "proxmox `{endpoint}`: {what}: no answer within {}{}",
        span(*within),
        no_answer_note(what, *attempts)
    )]
    NoAnswer {
        endpoint: String,
        what: String,
        within: std::time::Duration,
        attempts: u32,
    },
    /// No connection (TCP and TLS) within the connect timeout on any
    /// attempt: nothing was sent.
    #[error(
        "proxmox `{endpoint}`: {what}: no answer within {} (no connection in {attempts} attempts; \
         nothing was sent)",
        span(*within)
    )]
    Unreachable {
        endpoint: String,
        what: String,
        within: std::time::Duration,
        attempts: u32,
    },
    /// A 3xx answer: redirects are never followed, so the token goes to
    /// the configured endpoint only.
    #[error(
        "proxmox `{what}`: redirected ({status}) to `{location}`; oxbake does not follow \
         redirects (the API token goes to the configured endpoint only): set `endpoint` to \
         the API's own address"
    )]
    Redirected {
        what: String,
        status: u16,
        location: String,
    },
    #[error("proxmox `{what}`: invalid response: {message}")]
    Decode { what: String, message: String },
    #[error("proxmox task `{upid}` failed: {message}")]
    TaskFailed { upid: String, message: String },
    /// The task did not end (or its status went unanswered) before
    /// `task_timeout`; `expired` says what was seen last.
    #[error("{expired}")]
    TaskTimeout {
        upid: String,
        expired: Box<crate::target::deadline::Expired>,
    },
    #[error("invalid upid `{0}`")]
    InvalidUpid(String),
    #[error("invalid proxmox endpoint `{0}`: expected `https://host:8006`")]
    InvalidEndpoint(String),
    #[error(
        "proxmox endpoint `{0}` is plain http: oxbake never sends the API token unencrypted; \
         use `https://host:8006`"
    )]
    PlainHttpEndpoint(String),
    #[error(
        "proxmox endpoint `{0}` carries a user name or password: remove it (the API token \
         authenticates)"
    )]
    EndpointUserinfo(String),
    #[error("invalid token id `{0}`: expected `user@realm!tokenname`")]
    InvalidTokenId(String),
    #[error("the environment variable `{0}` (the proxmox token secret) is not set")]
    MissingSecret(String),
    #[error("invalid fingerprint `{0}`: expected 32 bytes in hex, `:` between bytes allowed")]
    InvalidFingerprint(String),
    #[error("`{}`: {message}", path.display())]
    CaFile { path: PathBuf, message: String },
    #[error("tls setup: {0}")]
    Tls(String),
    /// The server's certificate failed the trust settings: nothing was sent.
    #[error("proxmox `{endpoint}`: TLS handshake refused, no request was sent: {reason}")]
    Untrusted { endpoint: String, reason: String },
    #[error("no free vmid in {lo}..={hi}")]
    NoFreeVmid { lo: u32, hi: u32 },
}

fn code(status: Option<u16>) -> String {
    status.map(|s| format!(" ({s})")).unwrap_or_default()
}

fn no_answer_note(what: &str, attempts: u32) -> String {
    if what.starts_with("GET ") {
        format!(" ({attempts} attempts)")
    } else {
        "; the server may still have carried it out".to_string()
    }
}

fn params(message: &str, errors: &BTreeMap<String, String>) -> String {
    if errors.is_empty() {
        return message.to_string();
    }
    let each: Vec<String> = errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{message} ({})", each.join("; "))
}

impl PveError {
    /// Problems with the operator's settings (exit 2), as opposed to the
    /// cluster failing (exit 1).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Self::InvalidEndpoint(_)
                | Self::PlainHttpEndpoint(_)
                | Self::EndpointUserinfo(_)
                | Self::InvalidTokenId(_)
                | Self::MissingSecret(_)
                | Self::InvalidFingerprint(_)
                | Self::CaFile { .. }
        )
    }

    /// Whether the object the request named does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether a request went without an answer within the request timeout.
    pub fn is_no_answer(&self) -> bool {
        matches!(self, Self::NoAnswer { .. })
    }

    /// Whether a request went without any answer (none in time, or no
    /// connection at all).
    pub fn went_unanswered(&self) -> bool {
        matches!(self, Self::NoAnswer { .. } | Self::Unreachable { .. })
    }

    /// Whether the request failed on a VM lock or a lock timeout.
    pub fn is_locked(&self) -> bool {
        matches!(self, Self::Locked { .. })
    }

    /// The server's message, for callers that match on Proxmox's wording.
    pub fn message(&self) -> String {
        match self {
            Self::NotFound { message, .. }
            | Self::Locked { message, .. }
            | Self::Permission { message, .. }
            | Self::Auth { message, .. }
            | Self::Parameter { message, .. }
            | Self::Server { message, .. }
            | Self::Transient { message, .. }
            | Self::Decode { message, .. }
            | Self::TaskFailed { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

/// Whether a Proxmox message reports a VM lock (`VM is locked (clone)`) or a
/// config lock that timed out (`can't lock file '…' - got timeout`).
pub fn is_lock_message(message: &str) -> bool {
    message.contains("VM is locked")
        || (message.contains("can't lock file") && message.contains("got timeout"))
}

/// Whether a Proxmox message says the object does not exist.
pub fn is_missing_message(message: &str) -> bool {
    message.contains("does not exist") || message.starts_with("no such ")
}

/// Turns an HTTP error status and the server's message into a typed error.
pub fn classify(
    what: String,
    status: u16,
    message: String,
    errors: BTreeMap<String, String>,
) -> PveError {
    match status {
        400 => PveError::Parameter {
            what,
            status,
            message,
            errors,
        },
        401 => PveError::Auth {
            what,
            status,
            message,
        },
        403 => PveError::Permission {
            what,
            status,
            message,
        },
        404 => PveError::NotFound {
            what,
            status,
            message,
        },
        500 if is_lock_message(&message) => PveError::Locked {
            what,
            status: Some(status),
            message,
        },
        500 if is_missing_message(&message) => PveError::NotFound {
            what,
            status,
            message,
        },
        // 502-504 from a proxy, 595/596 from pveproxy forwarding to a node.
        502..=504 | 595 | 596 => PveError::Transient {
            what,
            status: Some(status),
            message,
        },
        _ => PveError::Server {
            what,
            status,
            message,
        },
    }
}

/// A task that ended with an error: a lock message becomes [`PveError::Locked`].
pub fn task_failed(upid: &str, message: String) -> PveError {
    if is_lock_message(&message) {
        PveError::Locked {
            what: format!("task {upid}"),
            status: None,
            message,
        }
    } else {
        PveError::TaskFailed {
            upid: upid.to_string(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_and_missing_messages_are_recognised() {
        let lock = "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout";
        let e = classify("POST /x".into(), 500, lock.into(), BTreeMap::new());
        assert!(e.is_locked(), "{e}");
        let e = classify(
            "GET /x".into(),
            500,
            "Configuration file 'nodes/pve1/qemu-server/100.conf' does not exist".into(),
            BTreeMap::new(),
        );
        assert!(e.is_not_found(), "{e}");
        // A shutdown timeout is not a lock.
        let e = task_failed("UPID:x", "VM quit/powerdown failed - got timeout".into());
        assert!(matches!(e, PveError::TaskFailed { .. }), "{e}");
    }

    #[test]
    fn no_answer_names_endpoint_request_and_time() {
        let e = PveError::NoAnswer {
            endpoint: "https://pve:8006".into(),
            what: "POST /nodes/pve/qemu/9000/clone".into(),
            within: std::time::Duration::from_secs(5),
            attempts: 1,
        };
        assert_eq!(
            e.to_string(),
            "proxmox `https://pve:8006`: POST /nodes/pve/qemu/9000/clone: no answer within 5s; \
             the server may still have carried it out"
        );
        let e = PveError::NoAnswer {
            endpoint: "https://pve:8006".into(),
            what: "GET /cluster/resources".into(),
            within: std::time::Duration::from_millis(1500),
            attempts: 4,
        };
        assert!(e.is_no_answer());
        assert_eq!(
            e.to_string(),
            "proxmox `https://pve:8006`: GET /cluster/resources: no answer within 1500ms (4 attempts)"
        );
    }

    #[test]
    fn parameter_errors_list_every_parameter() {
        let errors = BTreeMap::from([
            (
                "full".to_string(),
                "type check ('boolean') failed - got 'true'".to_string(),
            ),
            ("newid".to_string(), "VM 200 already exists".to_string()),
        ]);
        let e = classify(
            "POST /c".into(),
            400,
            "Parameter verification failed.".into(),
            errors,
        );
        assert_eq!(
            e.to_string(),
            "proxmox `POST /c`: invalid parameters (400): Parameter verification failed. \
             (full: type check ('boolean') failed - got 'true'; newid: VM 200 already exists)"
        );
    }
}
