//! The vault's errors. Each names the file in backticks; none carries a
//! value, the password or decrypted text.

use super::crypto::OpenError;
use super::yaml::YamlError;
use super::{DecryptError, FormatError};

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no vault configured: add `vault = \"PATH\"` to the `[secrets]` table of oxbake.toml")]
    NotConfigured,
    #[error("vault `{path}`: cannot read it")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("vault `{path}`: {problem}")]
    Format { path: String, problem: FormatError },
    #[error("vault `{path}`: wrong password or corrupted file (HMAC mismatch)")]
    Mac { path: String },
    #[error("vault `{path}`: corrupted file (bad padding)")]
    Padding { path: String },
    #[error("vault `{path}`: the decrypted content is not UTF-8 text")]
    NotUtf8 { path: String },
    #[error("vault `{path}`: {problem}")]
    Yaml { path: String, problem: YamlError },
    #[error(
        "vault `{path}`: no password: export {var} or set `password_file` in the `[secrets]` table of oxbake.toml"
    )]
    NoPassword { path: String, var: String },
    #[error("vault password file `{path}`: cannot read it")]
    PasswordFile {
        path: String,
        source: std::io::Error,
    },
    #[error("vault password from `{0}` is empty")]
    EmptyPassword(String),
    #[error("`{path}` is already an encrypted vault")]
    AlreadyEncrypted { path: String },
    #[error("vault `{path}`: cannot write it")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("vault `{path}`: cannot make a private temporary copy to edit")]
    TempDir {
        path: String,
        source: std::io::Error,
    },
    #[error("editor `{editor}`: {what}; the vault is unchanged")]
    Editor { editor: String, what: String },
    #[error(
        "vault `{path}`: edit interrupted; the plaintext copy is removed and the vault is unchanged"
    )]
    Interrupted { path: String },
    #[error(
        "`{path}` has {links} hard links: encrypting it would leave the plaintext under the others"
    )]
    HardLinks { path: String, links: u64 },
    #[error("vault id label {label}: {problem}")]
    Label {
        label: String,
        problem: &'static str,
    },
}

impl VaultError {
    pub(super) fn decrypt(path: &str, e: DecryptError) -> Self {
        let path = path.to_owned();
        match e {
            DecryptError::Format(problem) => VaultError::Format { path, problem },
            DecryptError::Open(OpenError::Mac) => VaultError::Mac { path },
            DecryptError::Open(OpenError::Padding) => VaultError::Padding { path },
        }
    }

    /// Whether the fault is in the input (the vault, its password or the
    /// settings) rather than in the operation (writing, the editor).
    pub fn is_invalid_input(&self) -> bool {
        !matches!(
            self,
            VaultError::Write { .. }
                | VaultError::TempDir { .. }
                | VaultError::Editor { .. }
                | VaultError::Interrupted { .. }
        )
    }
}
