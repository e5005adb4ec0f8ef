//! Keys for one build: the one-time client key oxbake logs in with, the
//! builder's host key injected through cloud-init, and the host-key policy.
//! Private keys live only in memory; `Debug` never shows them.

use std::fmt;
use std::sync::Arc;

use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, HashAlg, PrivateKey, PublicKey};

use super::error::GuestError;

/// A one-time ed25519 key that oxbake logs in to a builder with.
#[derive(Clone)]
pub struct ClientKey {
    key: Arc<PrivateKey>,
}

impl ClientKey {
    /// A fresh ed25519 key, kept in memory only.
    pub fn generate() -> Result<Self, GuestError> {
        Ok(Self {
            key: Arc::new(random_ed25519()?),
        })
    }

    /// Loads a key from OpenSSH private key text (unencrypted).
    pub fn from_openssh(text: &str) -> Result<Self, GuestError> {
        let key = PrivateKey::from_openssh(text).map_err(|e| GuestError::Key(e.to_string()))?;
        Ok(Self { key: Arc::new(key) })
    }

    /// The `ssh-ed25519 AAAA… oxbake` line for authorized_keys / cloud-init.
    pub fn public_line(&self) -> Result<String, GuestError> {
        public_line(self.key.public_key())
    }

    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The private key in OpenSSH format, for `--keep-on-failure` only (the
    /// operator needs it to reach the kept VM). Treat as a secret.
    pub fn private_openssh(&self) -> Result<String, GuestError> {
        private_openssh(&self.key)
    }

    pub(crate) fn private(&self) -> Arc<PrivateKey> {
        Arc::clone(&self.key)
    }
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClientKey({})", fingerprint(self.key.public_key()))
    }
}

/// A host key pair for a builder: the private half goes into cloud-init's
/// `ssh_keys`, the public half is what oxbake then expects.
#[derive(Clone)]
pub struct HostKeyPair {
    key: PrivateKey,
}

impl HostKeyPair {
    pub fn generate() -> Result<Self, GuestError> {
        Ok(Self {
            key: random_ed25519()?,
        })
    }

    /// The private key in OpenSSH format. Treat as a secret.
    pub fn private_openssh(&self) -> Result<String, GuestError> {
        private_openssh(&self.key)
    }

    pub fn public_line(&self) -> Result<String, GuestError> {
        public_line(self.key.public_key())
    }

    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }
}

impl fmt::Debug for HostKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKeyPair({})", fingerprint(self.key.public_key()))
    }
}

/// How the guest's host key is checked.
#[derive(Debug, Clone)]
pub enum HostKeyPolicy {
    /// Only this key is accepted.
    Expect(PublicKey),
    /// Accept the first key seen, then pin it for reconnections.
    TrustOnFirstUse,
}

impl HostKeyPolicy {
    /// Parses an OpenSSH public key line (`ssh-ed25519 AAAA… comment`).
    pub fn expect_line(line: &str) -> Result<Self, GuestError> {
        let key =
            PublicKey::from_openssh(line.trim()).map_err(|e| GuestError::Key(e.to_string()))?;
        Ok(Self::Expect(key))
    }
}

/// `SHA256:…`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn random_ed25519() -> Result<PrivateKey, GuestError> {
    let mut key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| GuestError::Key(e.to_string()))?;
    key.set_comment("oxbake");
    Ok(key)
}

fn public_line(key: &PublicKey) -> Result<String, GuestError> {
    key.to_openssh().map_err(|e| GuestError::Key(e.to_string()))
}

/// A private key in OpenSSH format.
fn private_openssh(key: &PrivateKey) -> Result<String, GuestError> {
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| GuestError::Key(e.to_string()))?;
    Ok(text.as_str().to_owned())
}
