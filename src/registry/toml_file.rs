//! Reading and writing registry files as TOML, with parse errors that point at
//! `path:line:column`.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::RegistryError;

/// Parses `text` (the contents of the file shown as `label`).
pub(crate) fn parse<T: DeserializeOwned>(label: &Path, text: &str) -> Result<T, RegistryError> {
    toml::from_str(text).map_err(|err| {
        let offset = err.span().map_or(0, |span| span.start);
        parse_error(label, text, offset, err.message())
    })
}

/// The bytes of the file shown as `label` as text; a byte that is not UTF-8
/// is a parse error at its place (invalid input, not a failed read).
pub(crate) fn text(label: &Path, bytes: Vec<u8>) -> Result<String, RegistryError> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let before = String::from_utf8_lossy(&e.as_bytes()[..valid]);
        parse_error(
            label,
            &before,
            valid,
            "invalid UTF-8: registry files must be UTF-8 text",
        )
    })
}

/// A parse error at byte `offset` of `text`.
pub(crate) fn parse_error(label: &Path, text: &str, offset: usize, message: &str) -> RegistryError {
    let (line, column) = position(text, offset);
    RegistryError::Parse {
        path: label.to_path_buf(),
        line,
        column,
        message: message.trim_end().to_string(),
    }
}

/// Encodes `value` for the file shown as `label`, after a header comment.
pub(crate) fn encode<T: Serialize>(
    label: &Path,
    header: &str,
    value: &T,
) -> Result<String, RegistryError> {
    let body = toml::to_string(value).map_err(|err| RegistryError::Encode {
        path: label.to_path_buf(),
        message: err.to_string(),
    })?;
    Ok(format!("{header}\n{body}"))
}

/// The 1-based line and column (counted in characters) of byte `offset`.
pub(crate) fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let text = "a = 1\nbé = 2\n\nc";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, 4), (1, 5));
        assert_eq!(position(text, 6), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(position(text, 9), (2, 3));
        assert_eq!(position(text, 10), (2, 4));
        assert_eq!(position(text, 14), (3, 1));
        assert_eq!(position(text, 15), (4, 1));
        assert_eq!(position(text, 999), (4, 2));
    }

    #[test]
    fn invalid_utf8_is_a_parse_error_at_its_place() {
        let err = text(
            Path::new("images/x.toml"),
            b"a = 1\nb = \"\xff\"\n".to_vec(),
        )
        .unwrap_err();
        assert!(err.is_invalid_input());
        assert_eq!(
            err.to_string(),
            "images/x.toml:2:6: invalid UTF-8: registry files must be UTF-8 text"
        );
        assert_eq!(text(Path::new("x"), b"a = 1".to_vec()).unwrap(), "a = 1");
    }

    #[test]
    fn offsets_inside_a_character_round_down() {
        assert_eq!(position("é", 1), (1, 1));
    }
}
