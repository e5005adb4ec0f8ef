//! Reading `channels.toml` without its history: `oxbake show` and
//! `oxbake prune` need only which version each channel points at, while the
//! history grows by an entry with every promotion (most of the file after a
//! few years of nightlies).
//!
//! oxbake writes the `[channels.*]` tables first and the `[[history]]`
//! entries after them. The quick way parses only the text before the first
//! `[[history]]` line, and is taken only when that provably gives the same
//! channels as parsing the whole file: that text is a complete document of
//! its own that defines no history, and no line after the cut opens any
//! table but another `[[history]]` entry (so nothing there can add to the
//! channels). Any other file is parsed whole, so its errors keep their
//! `path:line:column`. Errors inside history entries are not looked for
//! here; the commands that read the history (`rollback`, `check`, `ls`)
//! still report them.

use std::path::Path;

use serde::Deserialize;
use toml::de::{DeTable, Deserializer};

use super::{Channels, RegistryError, toml_file};

const HISTORY: &str = "[[history]]";

/// The channels of the file shown as `label`, with an empty history.
pub(crate) fn parse_without_history(label: &Path, text: &str) -> Result<Channels, RegistryError> {
    if let Some(channels) = quick(text) {
        return Ok(channels);
    }
    let mut channels: Channels = toml_file::parse(label, text)?;
    channels.history.clear();
    Ok(channels)
}

/// The channels, if the quick way applies and finds no error.
fn quick(text: &str) -> Option<Channels> {
    let cut = history_offset(text)?;
    let (before, after) = text.split_at(cut);
    let only_history = after.lines().all(|line| {
        let line = line.trim_matches([' ', '\t', '\r']);
        !line.starts_with('[') || line == HISTORY
    });
    if !only_history {
        return None;
    }
    let table = DeTable::parse(before).ok()?;
    if table.get_ref().contains_key("history") {
        return None;
    }
    Channels::deserialize(Deserializer::from(table)).ok()
}

/// Where the first line that is exactly `[[history]]` starts.
fn history_offset(text: &str) -> Option<usize> {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end_matches(['\n', '\r']) == HISTORY {
            return Some(at);
        }
        at += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# header\n[channels.dev]\nui = \"2026.11.25.2\"\n\n[channels.prod]\n\
        ui = \"2026.11.25.1\"\n\n[[history]]\nwhen = \"2026-11-25T10:03:12Z\"\nwho = \"a\"\n\
        action = \"set\"\nrole = \"ui\"\nchannel = \"dev\"\nto = \"2026.11.25.2\"\nwhy = \"n\"\n";

    fn label() -> &'static Path {
        Path::new("images/channels.toml")
    }

    fn whole(text: &str) -> Result<Channels, RegistryError> {
        let mut channels = Channels::parse(label(), text)?;
        channels.history.clear();
        Ok(channels)
    }

    #[test]
    fn the_quick_way_gives_the_channels_of_the_whole_file() {
        assert!(quick(FILE).is_some());
        let read = parse_without_history(label(), FILE).unwrap();
        assert_eq!(read, whole(FILE).unwrap());
        assert_eq!(read.get("prod", "ui").unwrap().to_string(), "2026.11.25.1");
        assert!(read.history.is_empty());
    }

    #[test]
    fn a_bad_history_entry_is_not_read() {
        let text = FILE.replace("who = \"a\"", "who = 3");
        assert!(Channels::parse(label(), &text).is_err());
        assert_eq!(
            parse_without_history(label(), &text).unwrap(),
            whole(FILE).unwrap()
        );
    }

    #[test]
    fn channels_after_the_history_are_not_missed() {
        let text = format!("{FILE}\n[channels.staging]\nui = \"2026.11.25.1\"\n");
        assert!(quick(&text).is_none());
        let read = parse_without_history(label(), &text).unwrap();
        assert_eq!(
            read.get("staging", "ui").unwrap().to_string(),
            "2026.11.25.1"
        );
    }

    #[test]
    fn errors_before_the_history_keep_their_place() {
        let text = FILE.replace("ui = \"2026.11.25.1\"", "ui = \"today\"");
        let err = parse_without_history(label(), &text).unwrap_err();
        let expected = whole(&text).unwrap_err().to_string();
        assert_eq!(err.to_string(), expected);
        assert!(
            err.to_string().starts_with("images/channels.toml:6:6: "),
            "{err}"
        );
    }

    #[test]
    fn a_cut_inside_a_string_or_an_inline_history_falls_back() {
        let text = "[channels.dev]\nui = \"\"\"\n[[history]]\n\"\"\"\n";
        assert!(quick(text).is_none());
        let inline = format!("history = []\n{FILE}");
        assert!(quick(&inline).is_none());
        let read = parse_without_history(label(), &inline).map_err(|e| e.to_string());
        assert_eq!(read, whole(&inline).map_err(|e| e.to_string()));
    }

    #[test]
    fn a_file_without_history_is_read_whole() {
        let text = "[channels.dev]\nui = \"2026.11.25.2\"\n";
        let read = parse_without_history(label(), text).unwrap();
        assert_eq!(read.get("dev", "ui").unwrap().to_string(), "2026.11.25.2");
    }
}
