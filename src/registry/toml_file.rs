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
    crate::diag::utf8(bytes).map_err(|(line, column)| RegistryError::Parse {
        path: label.to_path_buf(),
        line,
        column,
        message: "invalid UTF-8: registry files must be UTF-8 text".to_owned(),
    })
}

/// A parse error at byte `offset` of `text`.
pub(crate) fn parse_error(label: &Path, text: &str, offset: usize, message: &str) -> RegistryError {
    let (line, column) = crate::diag::line_column(text, offset);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
