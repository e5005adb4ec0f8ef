//! Opening an authenticated SSH connection: host-key check, login, and
//! retries under a deadline while the guest is still booting.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};

use super::error::GuestError;
use super::keys::{HostKeyPolicy, fingerprint};
use super::target::GuestTarget;

pub(crate) type SshHandle = Handle<HostKeyCheck>;

/// The russh client handler: it only checks the host key.
pub(crate) struct HostKeyCheck {
    expected: Option<PublicKey>,
    seen: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(key.clone());
        }
        Ok(self
            .expected
            .as_ref()
            .is_none_or(|want| want.key_data() == key.key_data()))
    }
}

/// Why one attempt failed, and whether another attempt may help.
enum Attempt {
    Retry(String),
    Fatal(GuestError),
}

/// Connects under `deadline`, retrying what a booting guest does (refused,
/// reset, no banner yet). Returns the handle and the host key it accepted.
pub(crate) async fn connect(
    target: &GuestTarget,
    deadline: Duration,
) -> Result<(SshHandle, PublicKey), GuestError> {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let last = match attempt(target).await {
            Ok(done) => return Ok(done),
            Err(Attempt::Fatal(error)) => return Err(error),
            Err(Attempt::Retry(last)) => last,
        };
        let elapsed = started.elapsed();
        if elapsed + target.timing.retry_interval >= deadline {
            return Err(GuestError::Connect {
                addr: target.addr,
                attempts,
                elapsed,
                last,
            });
        }
        tokio::time::sleep(target.timing.retry_interval).await;
    }
}

async fn attempt(target: &GuestTarget) -> Result<(SshHandle, PublicKey), Attempt> {
    let seen = Arc::new(Mutex::new(None));
    let handler = HostKeyCheck {
        expected: match &target.host_key {
            HostKeyPolicy::Expect(key) => Some(key.clone()),
            HostKeyPolicy::TrustOnFirstUse => None,
        },
        seen: Arc::clone(&seen),
    };
    let login = async {
        let handle = client::connect(config(target), target.addr, handler).await;
        let mut handle = handle.map_err(|e| handshake_error(target, &e, &seen))?;
        authenticate(target, &mut handle).await?;
        Ok(handle)
    };
    let handle = match tokio::time::timeout(target.timing.attempt_timeout, login).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(Attempt::Retry(
                "no ssh banner or login before the attempt timed out".into(),
            ));
        }
    };
    let key = seen.lock().ok().and_then(|k| k.clone());
    // russh calls check_server_key before the login can succeed.
    let key = key.ok_or_else(|| Attempt::Retry("server presented no host key".into()))?;
    Ok((handle, key))
}

async fn authenticate(target: &GuestTarget, handle: &mut SshHandle) -> Result<(), Attempt> {
    let key = PrivateKeyWithHashAlg::new(target.key.private(), None);
    let result = handle
        .authenticate_publickey(target.user.clone(), key)
        .await
        .map_err(|e| Attempt::Retry(format!("login: {e}")))?;
    if result.success() {
        Ok(())
    } else {
        Err(Attempt::Fatal(GuestError::AuthFailed {
            addr: target.addr,
            user: target.user.clone(),
        }))
    }
}

fn handshake_error(
    target: &GuestTarget,
    error: &russh::Error,
    seen: &Mutex<Option<PublicKey>>,
) -> Attempt {
    if let (russh::Error::UnknownKey, HostKeyPolicy::Expect(want)) = (error, &target.host_key) {
        let got = seen.lock().ok().and_then(|k| k.as_ref().map(fingerprint));
        return Attempt::Fatal(GuestError::HostKeyMismatch {
            addr: target.addr,
            expected: fingerprint(want),
            got: got.unwrap_or_else(|| "a certificate".into()),
        });
    }
    Attempt::Retry(error.to_string())
}

fn config(target: &GuestTarget) -> Arc<client::Config> {
    Arc::new(client::Config {
        keepalive_interval: Some(target.timing.keepalive_interval),
        keepalive_max: target.timing.keepalive_max,
        nodelay: true,
        ..client::Config::default()
    })
}
