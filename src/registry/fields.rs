//! Field types of registry files that check their own syntax while parsing,
//! so a bad value is reported at its line and column.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{RegistryError, Version, names};

/// A SHA-256 digest as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256(String);

impl Sha256 {
    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Sha256 {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let hex = text.strip_prefix("sha256:").unwrap_or(text);
        let ok = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(RegistryError::InvalidField {
                what: "sha256 digest",
                value: text.into(),
                reason: "expected 64 hex digits".into(),
            });
        }
        Ok(Self(hex.to_ascii_lowercase()))
    }
}

impl fmt::Display for Sha256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an image was built on: another role's image, or a base image named by
/// its identity (`base-image:debian-12-<hash>`, `sha256:<hex>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parent {
    Image { role: String, version: Version },
    Base(String),
}

impl FromStr for Parent {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || RegistryError::InvalidField {
            what: "parent",
            value: text.into(),
            reason: "expected ROLE@VERSION or a base image identity such as `base-image:NAME`"
                .into(),
        };
        if let Some((role, version)) = text.split_once('@') {
            if !names::is_valid_name(role) {
                return Err(invalid());
            }
            let version = version.parse()?;
            return Ok(Self::Image {
                role: role.into(),
                version,
            });
        }
        let base_ok = text.split_once(':').is_some_and(|(kind, id)| {
            !kind.is_empty() && !id.is_empty() && !text.chars().any(char::is_whitespace)
        });
        if base_ok {
            Ok(Self::Base(text.into()))
        } else {
            Err(invalid())
        }
    }
}

impl fmt::Display for Parent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Image { role, version } => write!(f, "{role}@{version}"),
            Self::Base(identity) => f.write_str(identity),
        }
    }
}

/// Serde through `Display`/`FromStr`, for types written as one TOML string.
macro_rules! string_serde {
    ($type:ty) => {
        impl Serialize for $type {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $type {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_serde!(Sha256);
string_serde!(Parent);

/// Serde for [`Timestamp`] as an RFC 3339 UTC string with whole seconds.
pub(crate) mod rfc3339 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(
        ts: &Timestamp,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{ts:.0}"))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e| {
            serde::de::Error::custom(format!("invalid time `{text}` (expected RFC 3339): {e}"))
        })
    }
}

/// A timestamp cut to whole seconds, as the registry stores it.
pub(crate) fn whole_seconds(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_accept_hex_with_an_optional_prefix() {
        let hex = "AB".repeat(32);
        let d: Sha256 = format!("sha256:{hex}").parse().unwrap();
        assert_eq!(d.as_str(), "ab".repeat(32));
        assert!("abc".parse::<Sha256>().is_err());
        assert!("zz".repeat(32).parse::<Sha256>().is_err());
    }

    #[test]
    fn parents_are_images_or_base_identities() {
        let p: Parent = "base@2026.11.24.3".parse().unwrap();
        assert!(matches!(&p, Parent::Image { role, .. } if role == "base"));
        assert_eq!(p.to_string(), "base@2026.11.24.3");
        let b: Parent = "base-image:debian-12-0a1b".parse().unwrap();
        assert_eq!(b, Parent::Base("base-image:debian-12-0a1b".into()));
        for bad in ["base", "Base@2026.11.24.1", "base@today", ":x", "a: b"] {
            assert!(bad.parse::<Parent>().is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_print_whole_seconds_in_utc() {
        let ts: Timestamp = "2026-11-25T11:03:12.75+01:00".parse().unwrap();
        assert_eq!(whole_seconds(ts).to_string(), "2026-11-25T10:03:12Z");
    }
}
