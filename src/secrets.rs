//! Secrets by name. They reach only the commands and files that need them,
//! and every value is handed to the guest module for redaction, so none
//! appears in a log, an error or a record.
//!
//! Sources, the first that has the name wins: the environment variable
//! `OXBAKE_SECRET_<NAME>` (the name in upper case, `-` as `_`), then the
//! vault that `[secrets]` in oxbake.toml names (see [`crate::vault`]). The
//! vault is opened only when a name is not in the environment.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::config::SecretsSettings;
use crate::vault::{Password, VaultError, VaultFile};

/// Secret values by name. `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret `{name}` is not set: export {var}")]
    Missing { name: String, var: String },
    #[error("secret `{name}` is not in the vault `{vault}`: add it there or export {var}")]
    NotInVault {
        name: String,
        vault: String,
        var: String,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

impl Secrets {
    /// The environment variable that holds secret `name`.
    pub fn env_var(name: &str) -> String {
        format!(
            "OXBAKE_SECRET_{}",
            name.to_ascii_uppercase().replace('-', "_")
        )
    }

    /// Reads each named secret from the environment.
    pub fn from_env<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, SecretsError> {
        let mut values = BTreeMap::new();
        for name in names {
            let var = Self::env_var(name);
            match std::env::var(&var) {
                Ok(value) if !value.is_empty() => {
                    values.insert(name.to_owned(), value);
                }
                _ => {
                    return Err(SecretsError::Missing {
                        name: name.to_owned(),
                        var,
                    });
                }
            }
        }
        Ok(Self { values })
    }

    /// Reads each named secret from the environment, else from the vault the
    /// settings name (`root` is the project folder its path is relative to).
    pub fn load<'a>(
        root: &Path,
        settings: &SecretsSettings,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, SecretsError> {
        Self::load_with(root, settings, names, |var| std::env::var(var).ok())
    }

    fn load_with<'a>(
        root: &Path,
        settings: &SecretsSettings,
        names: impl IntoIterator<Item = &'a str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SecretsError> {
        let mut secrets = Self::default();
        let rest = secrets.take_from_env(names, env);
        let Some(first) = rest.first() else {
            return Ok(secrets);
        };
        let Some(rel) = &settings.vault else {
            return Err(SecretsError::Missing {
                name: (*first).to_owned(),
                var: Self::env_var(first),
            });
        };
        let mut stored = open_vault(root, settings, rel)?;
        for name in rest {
            let value = stored
                .remove(name)
                .ok_or_else(|| SecretsError::NotInVault {
                    name: name.to_owned(),
                    vault: rel.clone(),
                    var: Self::env_var(name),
                })?;
            secrets.values.insert(name.to_owned(), value);
        }
        Ok(secrets)
    }

    /// Adds each named secret that is set, from the environment or the
    /// vault (opened only when one is not in the environment); a name set
    /// nowhere is left out, not an error.
    pub fn add_optional<'a>(
        &mut self,
        root: &Path,
        settings: &SecretsSettings,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), SecretsError> {
        self.add_optional_with(root, settings, names, |var| std::env::var(var).ok())
    }

    fn add_optional_with<'a>(
        &mut self,
        root: &Path,
        settings: &SecretsSettings,
        names: impl IntoIterator<Item = &'a str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), SecretsError> {
        let rest = self.take_from_env(names, env);
        let Some(rel) = settings.vault.as_ref().filter(|_| !rest.is_empty()) else {
            return Ok(());
        };
        let mut stored = open_vault(root, settings, rel)?;
        for name in rest {
            if let Some(value) = stored.remove(name).filter(|v| !v.is_empty()) {
                self.values.insert(name.to_owned(), value);
            }
        }
        Ok(())
    }

    /// Takes each name set (not empty) in the environment; the others.
    fn take_from_env<'a>(
        &mut self,
        names: impl IntoIterator<Item = &'a str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Vec<&'a str> {
        let mut rest = Vec::new();
        for name in names {
            match env(&Self::env_var(name)) {
                Some(value) if !value.is_empty() => {
                    self.values.insert(name.to_owned(), value);
                }
                _ => rest.push(name),
            }
        }
        rest
    }

    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every value, for redaction.
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.values.values().map(String::as_str)
    }
}

/// The vault's secrets by name.
fn open_vault(
    root: &Path,
    settings: &SecretsSettings,
    rel: &str,
) -> Result<BTreeMap<String, String>, SecretsError> {
    let vault = VaultFile::new(root, rel);
    let password = Password::resolve(root, settings, rel)?;
    Ok(vault.secrets(&password)?)
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_only() {
        let mut s = Secrets::default();
        s.insert("db_password", "hunter2");
        let shown = format!("{s:?}");
        assert!(
            shown.contains("db_password") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    fn fixture_settings() -> (std::path::PathBuf, SecretsSettings) {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/vault");
        let settings = SecretsSettings {
            vault: Some("ansible-1.1.yml".into()),
            password_file: Some("password.txt".into()),
            password_env: None,
        };
        (root, settings)
    }

    #[test]
    fn vault_supplies_secrets_and_the_environment_overrides_it() {
        let (root, settings) = fixture_settings();
        let names = ["vault_db_password", "vault_ox_admin_password"];
        let env = |var: &str| {
            (var == "OXBAKE_SECRET_VAULT_OX_ADMIN_PASSWORD").then(|| "from env".to_owned())
        };
        let s = Secrets::load_with(&root, &settings, names, env).unwrap();
        assert_eq!(s.get("vault_db_password"), Some("Db-p4ss: \"quoted\" é"));
        assert_eq!(s.get("vault_ox_admin_password"), Some("from env"));
    }

    #[test]
    fn vault_is_not_opened_when_nothing_is_asked_or_all_is_in_the_environment() {
        let (root, mut settings) = fixture_settings();
        settings.password_file = Some("no-such-file".into());
        let none = Secrets::load_with(&root, &settings, [], |_| None).unwrap();
        assert_eq!(none.values().count(), 0);
        let env = |_: &str| Some("x".to_owned());
        assert!(Secrets::load_with(&root, &settings, ["a"], env).is_ok());
        let err = Secrets::load_with(&root, &settings, ["a"], |_| None).unwrap_err();
        assert!(matches!(err, SecretsError::Vault(_)), "{err}");
    }

    #[test]
    fn a_name_missing_from_the_vault_names_both_sources() {
        let (root, settings) = fixture_settings();
        let err = Secrets::load_with(&root, &settings, ["ox_repo_password"], |_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret `ox_repo_password` is not in the vault `ansible-1.1.yml`: add it there or export OXBAKE_SECRET_OX_REPO_PASSWORD"
        );
    }

    #[test]
    fn optional_secrets_are_taken_where_set_and_left_out_elsewhere() {
        let (root, settings) = fixture_settings();
        let env = |var: &str| (var == "OXBAKE_SECRET_FROM_ENV").then(|| "e".to_owned());
        let mut s = Secrets::default();
        let names = ["from_env", "vault_db_password", "set_nowhere"];
        s.add_optional_with(&root, &settings, names, env).unwrap();
        assert_eq!(s.get("from_env"), Some("e"));
        assert_eq!(s.get("vault_db_password"), Some("Db-p4ss: \"quoted\" é"));
        assert_eq!(s.get("set_nowhere"), None);
        // Without a vault, or with all in the environment, none is opened.
        let mut broken = settings.clone();
        broken.password_file = Some("no-such-file".into());
        s.add_optional_with(&root, &broken, ["from_env"], env)
            .unwrap();
        let none = SecretsSettings {
            vault: None,
            ..broken.clone()
        };
        s.add_optional_with(&root, &none, ["set_nowhere"], |_| None)
            .unwrap();
        assert_eq!(s.get("set_nowhere"), None);
        // A vault that is named but cannot be opened is an error still.
        let err = s.add_optional_with(&root, &broken, ["set_nowhere"], |_| None);
        assert!(matches!(err, Err(SecretsError::Vault(_))), "{err:?}");
    }

    #[test]
    fn missing_secret_names_its_variable() {
        let err = Secrets::from_env(["oxbake-test-never-set"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret `oxbake-test-never-set` is not set: export OXBAKE_SECRET_OXBAKE_TEST_NEVER_SET"
        );
    }
}
