//! Channels that point at a version oxbake cannot use: its record is
//! missing (pruned by hand, lost in a merge) or cannot be read (unparsable,
//! unreadable). `oxbake ls`, `oxbake check` and `oxbake nightly --plan`
//! report each one at its place in `images/channels.toml`; `oxbake rollback`
//! moves such a channel back to its previous usable version.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{Registry, RegistryError, Version};

/// One channel entry that names an unusable version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelProblem {
    pub channel: String,
    pub role: String,
    pub version: Version,
    /// What is wrong with the version's record.
    pub problem: String,
    /// `images/channels.toml` as shown, and the entry's place in it.
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl ChannelProblem {
    /// `channel `prod` of role `ui` points at 2026.12.01.1, …`.
    pub fn message(&self) -> String {
        format!(
            "channel `{}` of role `{}` points at {}, which cannot be used: {} \
             (move it back with `oxbake rollback {} --channel {}`)",
            self.channel, self.role, self.version, self.problem, self.role, self.channel
        )
    }
}

impl std::fmt::Display for ChannelProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let place = self.path.display();
        write!(
            f,
            "{place}:{}:{}: {}",
            self.line,
            self.column,
            self.message()
        )
    }
}

/// The places of the entries of `[channels.*]`.
#[derive(Deserialize)]
struct Spans {
    #[serde(default)]
    channels: BTreeMap<String, BTreeMap<String, toml::Spanned<String>>>,
}

impl Registry {
    /// Every channel entry whose version has no readable record, in channel
    /// and role order. An unreadable `channels.toml` is an error.
    pub fn channel_problems(&self) -> Result<Vec<ChannelProblem>, RegistryError> {
        let channels = self.channels()?;
        let path = self.channels_label();
        let text = std::fs::read_to_string(self.dir.join("channels.toml")).unwrap_or_default();
        let spans = toml::from_str::<Spans>(&text).ok();
        let mut out = Vec::new();
        for (channel, roles) in &channels.channels {
            for (role, version) in roles {
                let problem = match self.get(role, version) {
                    Ok(_) => continue,
                    Err(RegistryError::NotFound { path, .. }) => {
                        format!("its record `{}` does not exist", path.display())
                    }
                    Err(RegistryError::Io { source, .. }) => {
                        let file = self.paths(&super::store::record_rel(role, version)).1;
                        format!("its record `{}` cannot be read: {source}", file.display())
                    }
                    Err(e) => format!("its record is invalid: {e}"),
                };
                let offset = spans
                    .as_ref()
                    .and_then(|s| s.channels.get(channel)?.get(role))
                    .map_or(0, |v| v.span().start);
                let (line, column) = crate::diag::line_column(&text, offset);
                out.push(ChannelProblem {
                    channel: channel.clone(),
                    role: role.clone(),
                    version: *version,
                    problem,
                    path: path.clone(),
                    line,
                    column,
                });
            }
        }
        Ok(out)
    }
}

impl Registry {
    /// What `oxbake check` reports about the registry's channels: each
    /// unusable entry at its place, or why `channels.toml` cannot be read.
    pub fn channel_diagnostics(&self) -> crate::diag::Diagnostics {
        use crate::diag::Diagnostic;
        let mut out = crate::diag::Diagnostics::default();
        match self.channel_problems() {
            Ok(problems) => {
                for p in problems {
                    out.push(Diagnostic {
                        message: p.message(),
                        path: p.path,
                        line: p.line,
                        column: p.column,
                    });
                }
            }
            Err(RegistryError::Parse {
                path,
                line,
                column,
                message,
            }) => out.push(Diagnostic {
                path,
                line,
                column,
                message,
            }),
            Err(e) => out.push(Diagnostic::file(&self.channels_label(), e.to_string())),
        }
        out
    }
}
