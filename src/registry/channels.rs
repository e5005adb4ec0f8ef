//! `images/channels.toml`: which version of each role every channel points
//! at, and the append-only history of every change.
//!
//! ```toml
//! [channels.dev]
//! ui = "2026.11.25.2"
//!
//! [[history]]
//! when = "2026-11-25T10:03:12Z"
//! who = "alice"
//! action = "set"
//! role = "ui"
//! channel = "dev"
//! from = "2026.11.25.1"
//! to = "2026.11.25.2"
//! why = "nightly"
//! ```

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::Version;
use super::fields::rfc3339;

/// The whole of `channels.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    /// channel -> role -> version.
    #[serde(default)]
    pub channels: BTreeMap<String, BTreeMap<String, Version>>,
    /// Every change, oldest first. Entries are only ever appended.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

/// One change of one channel of one role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    #[serde(with = "rfc3339")]
    pub when: Timestamp,
    pub who: String,
    pub action: ChannelAction,
    pub role: String,
    pub channel: String,
    /// The version the channel had before; absent the first time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Version>,
    pub to: Version,
    pub why: String,
}

/// How a channel came to point at a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelAction {
    /// Promoted (or pointed) there on purpose.
    Set,
    /// Returned to an earlier version by `rollback`.
    Rollback,
}

/// What a change did; `changed` is false when the channel already pointed at
/// the version (then nothing was written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChannelChange {
    pub role: String,
    pub channel: String,
    pub from: Option<Version>,
    pub to: Version,
    pub changed: bool,
}

impl Channels {
    /// Parses `channels.toml` from `text`, the contents of the file shown as
    /// `label`. Errors point at `label:line:column`.
    pub fn parse(label: &std::path::Path, text: &str) -> Result<Self, super::RegistryError> {
        super::toml_file::parse(label, text)
    }

    /// The version `channel` points at for `role`.
    pub fn get(&self, channel: &str, role: &str) -> Option<Version> {
        self.channels.get(channel)?.get(role).copied()
    }

    /// The channels that point at `role@version`, in name order.
    pub fn channels_of(&self, role: &str, version: &Version) -> Vec<String> {
        self.channels
            .iter()
            .filter(|(_, roles)| roles.get(role) == Some(version))
            .map(|(channel, _)| channel.clone())
            .collect()
    }

    /// The history of one channel of one role, oldest first.
    pub fn history_of<'a>(
        &'a self,
        role: &'a str,
        channel: &'a str,
    ) -> impl Iterator<Item = &'a HistoryEntry> + 'a {
        self.history
            .iter()
            .filter(move |e| e.role == role && e.channel == channel)
    }

    /// Points the channel at `entry.to` and appends `entry` to the history.
    pub(crate) fn apply(&mut self, entry: HistoryEntry) {
        self.channels
            .entry(entry.channel.clone())
            .or_default()
            .insert(entry.role.clone(), entry.to);
        self.history.push(entry);
    }

    /// The version a rollback of `channel` returns to: the one the channel had
    /// before the current one, skipping versions `usable` rejects (revoked
    /// ones). The history is replayed as a stack: a `set` pushes its version,
    /// a `rollback` pops back to its target, so rolling back twice goes two
    /// steps back rather than flipping between two versions.
    pub fn rollback_target(
        &self,
        role: &str,
        channel: &str,
        usable: impl Fn(&Version) -> bool,
    ) -> Option<Version> {
        let current = self.get(channel, role)?;
        let mut stack: Vec<Version> = Vec::new();
        for entry in self.history_of(role, channel) {
            if entry.action == ChannelAction::Rollback {
                stack.pop();
            }
            if stack.last() != Some(&entry.to) {
                stack.push(entry.to);
            }
        }
        stack
            .into_iter()
            .rev()
            .skip_while(|v| *v == current)
            .find(|v| *v != current && usable(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    fn step(channels: &mut Channels, action: ChannelAction, to: &str) {
        let entry = HistoryEntry {
            when: "2026-11-25T10:00:00Z".parse().unwrap(),
            who: "t".into(),
            action,
            role: "ui".into(),
            channel: "prod".into(),
            from: channels.get("prod", "ui"),
            to: v(to),
            why: String::new(),
        };
        channels.apply(entry);
    }

    #[test]
    fn rollback_walks_back_through_the_history() {
        let mut c = Channels::default();
        assert_eq!(c.rollback_target("ui", "prod", |_| true), None);
        for to in ["2026.11.20.1", "2026.11.21.1", "2026.11.22.1"] {
            step(&mut c, ChannelAction::Set, to);
        }
        assert_eq!(
            c.rollback_target("ui", "prod", |_| true),
            Some(v("2026.11.21.1"))
        );
        step(&mut c, ChannelAction::Rollback, "2026.11.21.1");
        assert_eq!(
            c.rollback_target("ui", "prod", |_| true),
            Some(v("2026.11.20.1"))
        );
        step(&mut c, ChannelAction::Rollback, "2026.11.20.1");
        assert_eq!(c.rollback_target("ui", "prod", |_| true), None);
        step(&mut c, ChannelAction::Set, "2026.11.23.1");
        assert_eq!(
            c.rollback_target("ui", "prod", |_| true),
            Some(v("2026.11.20.1"))
        );
    }

    #[test]
    fn rollback_skips_unusable_versions_and_other_channels() {
        let mut c = Channels::default();
        for to in ["2026.11.20.1", "2026.11.21.1", "2026.11.22.1"] {
            step(&mut c, ChannelAction::Set, to);
        }
        let revoked = v("2026.11.21.1");
        let target = c.rollback_target("ui", "prod", |x| *x != revoked);
        assert_eq!(target, Some(v("2026.11.20.1")));
        assert_eq!(c.rollback_target("ui", "dev", |_| true), None);
        assert_eq!(c.rollback_target("web", "prod", |_| true), None);
    }

    #[test]
    fn lookups_find_channels_by_version() {
        let mut c = Channels::default();
        step(&mut c, ChannelAction::Set, "2026.11.20.1");
        c.channels
            .entry("dev".into())
            .or_default()
            .insert("ui".into(), v("2026.11.20.1"));
        assert_eq!(c.channels_of("ui", &v("2026.11.20.1")), ["dev", "prod"]);
        assert!(c.channels_of("ui", &v("2026.11.21.1")).is_empty());
        assert_eq!(c.history_of("ui", "prod").count(), 1);
    }
}
