//! Secrets in an encrypted file that Ansible Vault reads and writes too
//! (`$ANSIBLE_VAULT;1.1;AES256`, or 1.2 with a vault id label), holding a
//! flat YAML mapping of secret names to strings.
//!
//! Errors name the file and the fault, never a key, the password or any
//! plaintext.

mod crypto;
mod edit;
mod editor;
mod envelope;
mod error;
mod file;
mod password;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use edit::{Edited, edit};
pub use envelope::{FormatError, Header, looks_encrypted};
pub use error::VaultError;
pub use password::{PASSWORD_ENV, Password};

use crypto::{OpenError, SALT_LEN};

/// Encrypts `plaintext` as a vault file's text, with a fresh random salt.
pub fn encrypt(plaintext: &[u8], password: &Password, header: &Header) -> String {
    let mut salt = [0u8; SALT_LEN];
    rand::fill(&mut salt);
    envelope::format(header, &crypto::seal(password.bytes(), &salt, plaintext))
}

/// Refuses a vault id label that would make a broken or ambiguous header.
pub fn check_label(label: &str) -> Result<(), VaultError> {
    match envelope::label_problem(label) {
        Some(problem) => Err(VaultError::Label {
            label: format!("{label:?}"),
            problem,
        }),
        None => Ok(()),
    }
}

/// Why [`decrypt`] failed, before a file name is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecryptError {
    Format(FormatError),
    Open(OpenError),
}

/// Decrypts a vault file's text.
pub fn decrypt(text: &str, password: &Password) -> Result<(Header, Vec<u8>), DecryptError> {
    let (header, sealed) = envelope::parse(text).map_err(DecryptError::Format)?;
    let plain = crypto::open(password.bytes(), &sealed).map_err(DecryptError::Open)?;
    Ok((header, plain))
}

/// One vault file: where it is, and how messages name it.
#[derive(Debug, Clone)]
pub struct VaultFile {
    pub path: PathBuf,
    /// As written in oxbake.toml or on the command line.
    pub shown: String,
}

/// A decrypted vault.
pub struct Opened {
    pub header: Header,
    pub plaintext: String,
}

impl VaultFile {
    /// `rel` relative to `root` (an absolute path stays as it is).
    pub fn new(root: &Path, rel: &str) -> Self {
        Self {
            path: root.join(rel),
            shown: rel.to_owned(),
        }
    }

    /// Reads and decrypts the file.
    pub fn open(&self, password: &Password) -> Result<Opened, VaultError> {
        let text = file::read(&self.path).map_err(|source| VaultError::Read {
            path: self.shown.clone(),
            source,
        })?;
        let (header, plain) =
            decrypt(&text, password).map_err(|e| VaultError::decrypt(&self.shown, e))?;
        let plaintext = String::from_utf8(plain).map_err(|_| VaultError::NotUtf8 {
            path: self.shown.clone(),
        })?;
        Ok(Opened { header, plaintext })
    }

    /// Reads, decrypts and parses the file's mapping.
    pub fn secrets(&self, password: &Password) -> Result<BTreeMap<String, String>, VaultError> {
        let opened = self.open(password)?;
        self.parse(&opened.plaintext)
    }

    /// Parses decrypted text as this vault's mapping.
    pub fn parse(&self, plaintext: &str) -> Result<BTreeMap<String, String>, VaultError> {
        yaml::parse(plaintext).map_err(|problem| VaultError::Yaml {
            path: self.shown.clone(),
            problem,
        })
    }

    /// Encrypts `plaintext` and replaces the file atomically (0600); a
    /// symlink stays and its target is replaced.
    pub fn seal(
        &self,
        header: &Header,
        plaintext: &str,
        password: &Password,
    ) -> Result<(), VaultError> {
        if let Some(label) = &header.vault_id {
            check_label(label)?;
        }
        let text = encrypt(plaintext.as_bytes(), password, header);
        file::write_atomic(&self.path, text.as_bytes()).map_err(|source| VaultError::Write {
            path: self.shown.clone(),
            source,
        })
    }
}

#[cfg(test)]
mod tests;
