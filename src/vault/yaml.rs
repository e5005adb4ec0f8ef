//! The decrypted vault: a flat YAML mapping of secret names to strings, as
//! in Ansible's `group_vars/all/vault.yml`.
//!
//! Not a YAML parser: a careful reader of the subset such files use, so that
//! no error can ever quote the plaintext (a parser's snippet would show a
//! secret). Accepted, one pair per line, keys at column 0:
//!
//! - `key: plain value` (taken as written, up to a ` #` comment; `123` or
//!   `true` stay the strings `123` and `true`);
//! - `key: "double quoted"` with YAML's escapes (`\"`, `\\`, `\n`, `\t`,
//!   `\xXX`, `\uXXXX`, …) and `key: 'single quoted'` (`''` is a quote), each
//!   on one line;
//! - `key: |` (with `-` or `+` chomping) and an indented literal block;
//! - an optional `!unsafe` tag, comments, blank lines, `---` and `...`.
//!
//! Refused with the line number: nested mappings, lists, flow collections,
//! anchors, aliases, other tags, folded (`>`) blocks, multi-line quoted or
//! plain scalars, empty values and duplicate keys.

use std::collections::BTreeMap;

mod scalar;

/// Where and why the text is not a flat mapping. `message` names keys at
/// most, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

pub(crate) fn fail<T>(line: usize, message: impl Into<String>) -> Result<T, YamlError> {
    Err(YamlError {
        line,
        message: message.into(),
    })
}

/// Reads a flat `key: value` mapping.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, YamlError> {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut map = BTreeMap::new();
    let mut i = 0;
    while i < lines.len() {
        let (number, line) = (i + 1, lines[i]);
        i += 1;
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if is_marker(line, "---") && map.is_empty() {
            continue;
        }
        if is_marker(line, "...") {
            break;
        }
        if line.starts_with([' ', '\t']) {
            return fail(
                number,
                "indented line: only flat `key: value` pairs are supported",
            );
        }
        let (key, rest) = split_key(number, line)?;
        let value = if rest.starts_with('|') {
            let (value, used) = scalar::literal_block(number, rest, &lines[i..])?;
            i += used;
            value
        } else {
            scalar::inline(number, key, rest)?
        };
        if map.insert(key.to_owned(), value).is_some() {
            return fail(number, format!("duplicate key `{key}`"));
        }
    }
    Ok(map)
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// `key: rest` → (`key`, `rest` without leading blanks).
fn split_key(number: usize, line: &str) -> Result<(&str, &str), YamlError> {
    if line.starts_with([
        '-', '[', '{', '?', '&', '*', '!', '"', '\'', '|', '>', '%', '@', '`',
    ]) {
        return fail(
            number,
            "expected `key: value` (lists, flow collections, quoted keys, anchors and tags are not supported)",
        );
    }
    let colon = line
        .char_indices()
        .find(|&(at, c)| {
            c == ':'
                && line[at + 1..]
                    .chars()
                    .next()
                    .is_none_or(char::is_whitespace)
        })
        .map(|(at, _)| at);
    let Some(colon) = colon else {
        return fail(number, "expected `key: value`");
    };
    let key = line[..colon].trim_end();
    if key.contains(" #") || key.is_empty() {
        return fail(number, "expected `key: value`");
    }
    Ok((key, line[colon + 1..].trim_start()))
}

#[cfg(test)]
mod tests;
