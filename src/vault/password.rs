//! The vault password: from the file `password_file` names (relative to
//! the project, or to the home folder with `~/`), else from the environment variable `password_env` names
//! (default `OXBAKE_VAULT_PASSWORD`). As Ansible does, surrounding
//! whitespace in a password file is not part of the password. Executable
//! password scripts (an Ansible feature) are not run.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use super::VaultError;
use crate::config::SecretsSettings;

pub const PASSWORD_ENV: &str = "OXBAKE_VAULT_PASSWORD";

/// A vault password. `Debug` hides it; dropped, it is overwritten.
#[derive(Clone)]
pub struct Password(Vec<u8>);

impl Password {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The password the settings point to. `vault` names the vault in
    /// messages.
    pub fn resolve(
        root: &Path,
        settings: &SecretsSettings,
        vault: &str,
    ) -> Result<Self, VaultError> {
        if let Some(file) = &settings.password_file {
            let home = std::env::var_os("HOME");
            return Self::from_file(&password_path(root, file, home.as_deref()), file);
        }
        let var = settings.password_env.as_deref().unwrap_or(PASSWORD_ENV);
        match std::env::var_os(var) {
            Some(value) if !value.is_empty() => {
                let bytes = value.into_encoded_bytes();
                let end = bytes.iter().rposition(|&b| b != b'\n' && b != b'\r');
                let trimmed = end.map_or(&bytes[..0], |e| &bytes[..=e]);
                if trimmed.is_empty() {
                    return Err(VaultError::EmptyPassword(var.to_owned()));
                }
                Ok(Self::new(trimmed))
            }
            _ => Err(VaultError::NoPassword {
                path: vault.to_owned(),
                var: var.to_owned(),
            }),
        }
    }

    fn from_file(path: &Path, shown: &str) -> Result<Self, VaultError> {
        let mut bytes = std::fs::read(path).map_err(|source| VaultError::PasswordFile {
            path: shown.to_owned(),
            source,
        })?;
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
        let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
        let password = match (start, end) {
            (Some(s), Some(e)) => Self::new(&bytes[s..=e]),
            _ => return Err(VaultError::EmptyPassword(shown.to_owned())),
        };
        bytes.fill(0);
        Ok(password)
    }
}

/// `file` relative to `root`, or to `home` when it starts with `~/`.
fn password_path(root: &Path, file: &str, home: Option<&OsStr>) -> PathBuf {
    match (file.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => Path::new(home).join(rest),
        _ => root.join(file),
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.fill(0);
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_file_is_relative_to_the_project_or_home() {
        let home = Some(OsStr::new("/home/op"));
        let root = Path::new("/srv/proj");
        assert_eq!(password_path(root, "pw", home), Path::new("/srv/proj/pw"));
        assert_eq!(password_path(root, "/etc/pw", home), Path::new("/etc/pw"));
        assert_eq!(password_path(root, "~/pw", home), Path::new("/home/op/pw"));
    }

    #[test]
    fn a_password_file_is_trimmed_and_may_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, " secret words \n").unwrap();
        let pw = Password::from_file(&file, "pw").unwrap();
        assert_eq!(pw.bytes(), b"secret words");
        assert_eq!(format!("{pw:?}"), "Password(..)");
        std::fs::write(&file, "\n\n").unwrap();
        let err = Password::from_file(&file, "pw").unwrap_err();
        assert_eq!(err.to_string(), "vault password from `pw` is empty");
    }
}
