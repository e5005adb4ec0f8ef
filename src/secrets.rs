//! Secrets by name. They reach only the commands and files that need them,
//! and every value is handed to the guest module for redaction, so none
//! appears in a log, an error or a record.
//!
//! Source: the environment variable `OXBAKE_SECRET_<NAME>` (the name in
//! upper case, `-` as `_`).

use std::collections::BTreeMap;
use std::fmt;

/// Secret values by name. `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Secrets {
    values: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret `{name}` is not set: export {var}")]
    Missing { name: String, var: String },
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

    #[test]
    fn missing_secret_names_its_variable() {
        let err = Secrets::from_env(["oxbake-test-never-set"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "secret `oxbake-test-never-set` is not set: export OXBAKE_SECRET_OXBAKE_TEST_NEVER_SET"
        );
    }
}
