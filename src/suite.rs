//! The Debian releases (suites) oxbake makes base images of. A root recipe
//! names one with `base = "SUITE"`; without it a role builds on bookworm,
//! as every role did before suites were an input.

use serde::{Deserialize, Serialize};

/// A Debian release oxbake can bootstrap and build on.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Suite {
    /// Debian 12, the base of every role that names none.
    #[default]
    Bookworm,
    /// Debian 13, the current stable release.
    Trixie,
}

/// A suite name oxbake does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Debian suite `{0}`; known: bookworm, trixie")]
pub struct UnknownSuite(pub String);

impl Suite {
    /// Every suite, oldest first.
    pub const ALL: [Suite; 2] = [Suite::Bookworm, Suite::Trixie];

    /// The codename, as apt and mmdebstrap spell it.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Bookworm => "bookworm",
            Suite::Trixie => "trixie",
        }
    }

    /// The release's major version (`Debian GNU/Linux 13`).
    pub fn version(self) -> u32 {
        match self {
            Suite::Bookworm => 12,
            Suite::Trixie => 13,
        }
    }
}

impl std::str::FromStr for Suite {
    type Err = UnknownSuite;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Suite::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| UnknownSuite(name.to_owned()))
    }
}

impl std::fmt::Display for Suite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_bookworm_is_the_default() {
        for suite in Suite::ALL {
            assert_eq!(suite.name().parse::<Suite>(), Ok(suite));
        }
        assert_eq!(Suite::default(), Suite::Bookworm);
        assert_eq!(Suite::Trixie.version(), 13);
        assert_eq!(
            "sid".parse::<Suite>().unwrap_err().to_string(),
            "unknown Debian suite `sid`; known: bookworm, trixie"
        );
    }
}
