//! Role and channel names, and `ROLE[@VERSION]` references.

use std::fmt;
use std::str::FromStr;

use super::{RegistryError, Version};

pub use crate::config::is_valid_name;

pub(crate) fn check_role(name: &str) -> Result<(), RegistryError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(RegistryError::InvalidRole { name: name.into() })
    }
}

pub(crate) fn check_channel(name: &str) -> Result<(), RegistryError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(RegistryError::InvalidChannel { name: name.into() })
    }
}

/// `ROLE` (meaning its newest version) or `ROLE@VERSION`, as typed on the
/// command line (`oxbake show ui@2026.11.25.1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub role: String,
    pub version: Option<Version>,
}

impl FromStr for ImageRef {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (role, version) = match text.split_once('@') {
            Some((role, version)) => (role, Some(version.parse()?)),
            None => (text, None),
        };
        if !is_valid_name(role) {
            return Err(RegistryError::InvalidReference { text: text.into() });
        }
        Ok(Self {
            role: role.into(),
            version,
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}@{version}", self.role),
            None => f.write_str(&self.role),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_path_components() {
        for ok in ["ui", "base", "openexchange_backend", "web-2", "0x"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "UI", "-x", "_x", "a/b", "..", "a b", "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn references_parse_with_and_without_version() {
        let r: ImageRef = "ui".parse().unwrap();
        assert_eq!((r.role.as_str(), r.version), ("ui", None));
        let r: ImageRef = "ui@2026.11.25.10".parse().unwrap();
        assert_eq!(r.version.unwrap().counter(), 10);
        assert_eq!(r.to_string(), "ui@2026.11.25.10");
        assert!("ui@latest".parse::<ImageRef>().is_err());
        let err = "../x@2026.11.25.1".parse::<ImageRef>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid image reference `../x@2026.11.25.1`: expected ROLE or ROLE@VERSION"
        );
    }
}
