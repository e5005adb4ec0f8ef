//! Reading an image record fast: the `[packages]` table (hundreds of lines,
//! nearly all of a record) is read line by line, the rest by the TOML parser.
//!
//! The quick way is taken only when it provably means the same as parsing the
//! whole file: the text before `[packages]` is a complete document of its
//! own, every line of the table is a plain `name = "version"` entry without
//! escapes, the names come in order (so none repeats), and nothing else defines `packages`. Any other
//! file, and every file with an error, is parsed whole, so errors keep their
//! `path:line:column`.

use std::path::Path;

use serde::Deserialize;
use toml::de::{DeTable, Deserializer};

use super::{ImageRecord, RegistryError, toml_file};

/// Parses the record file shown as `label`.
pub(crate) fn parse(label: &Path, text: &str) -> Result<ImageRecord, RegistryError> {
    match quick(text, Packages::Read) {
        Some(record) => Ok(record),
        None => toml_file::parse(label, text),
    }
}

/// Parses and checks the record file shown as `label` like [`parse`], but
/// leaves the record's `packages` empty (for summaries).
pub(crate) fn parse_without_packages(
    label: &Path,
    text: &str,
) -> Result<ImageRecord, RegistryError> {
    let mut record = match quick(text, Packages::Skip) {
        Some(record) => record,
        None => toml_file::parse(label, text)?,
    };
    record.packages.clear();
    Ok(record)
}

/// Whether the package list is built or only checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Packages {
    Read,
    Skip,
}

/// The record, if the quick way applies and finds no error.
fn quick(text: &str, packages: Packages) -> Option<ImageRecord> {
    let Split {
        before,
        entries,
        after,
    } = split(text)?;
    // A cut inside a multi-line string, array or inline table would leave
    // `before` unterminated.
    DeTable::parse(before).ok()?;
    let rest = format!("{before}{after}");
    let table = DeTable::parse(&rest).ok()?;
    if table.get_ref().contains_key("packages") {
        return None;
    }
    let mut record = ImageRecord::deserialize(Deserializer::from(table)).ok()?;
    if packages == Packages::Read {
        record.packages = entries
            .into_iter()
            .map(|(name, version)| (name.to_owned(), version.to_owned()))
            .collect();
    }
    Some(record)
}

/// A record's text cut around its `[packages]` table.
struct Split<'a> {
    /// The text before the `[packages]` header.
    before: &'a str,
    /// The table's `(name, version)` entries.
    entries: Vec<(&'a str, &'a str)>,
    /// The text from the next header on.
    after: &'a str,
}

fn split(text: &str) -> Option<Split<'_>> {
    let start = header_offset(text)?;
    let body = &text[start + "[packages]\n".len()..];
    let mut entries: Vec<(&str, &str)> = Vec::new();
    let mut consumed = 0;
    for line in body.split_inclusive('\n') {
        let content = line.trim_end_matches('\n').trim_end_matches('\r');
        let trimmed = content.trim_matches([' ', '\t']);
        if trimmed.starts_with('[') {
            break;
        }
        if !trimmed.is_empty() {
            let (name, version) = entry(trimmed)?;
            // In name order, as oxbake writes them: no name repeats, and the
            // map is built in one go.
            if entries.last().is_some_and(|(last, _)| *last >= name) {
                return None;
            }
            entries.push((name, version));
        }
        consumed += line.len();
    }
    Some(Split {
        before: &text[..start],
        entries,
        after: &body[consumed..],
    })
}

/// Where the line `[packages]` starts.
fn header_offset(text: &str) -> Option<usize> {
    let found = if text.starts_with("[packages]\n") {
        0
    } else {
        text.find("\n[packages]\n")? + 1
    };
    Some(found)
}

/// `NAME = "VERSION"` with a bare or plainly quoted name.
fn entry(line: &str) -> Option<(&str, &str)> {
    let (name, rest) = if let Some(quoted) = line.strip_prefix('"') {
        let end = quoted.find('"')?;
        (plain(&quoted[..end])?, &quoted[end + 1..])
    } else {
        let end = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .filter(|&end| end > 0)?;
        (&line[..end], &line[end..])
    };
    let value = rest.trim_start_matches([' ', '\t']).strip_prefix('=')?;
    let value = value.trim_start_matches([' ', '\t']).strip_prefix('"')?;
    let value = value.strip_suffix('"')?;
    Some((name, plain(value)?))
}

/// `text` if it needs no unescaping inside a basic string: no quote,
/// backslash or control character.
fn plain(text: &str) -> Option<&str> {
    let ok = text
        .chars()
        .all(|c| c != '"' && c != '\\' && (c == '\t' || !c.is_control()));
    ok.then_some(text)
}

#[cfg(test)]
#[path = "record_text_tests.rs"]
mod tests;
