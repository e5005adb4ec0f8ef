//! Reading TOML input files into typed values, with every error turned into
//! a [`Diagnostic`] that points at the offending line and column.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer, ValueDeserializer};

use crate::diag::Diagnostic;

/// Parses `text` (the contents of `path`) as a `T`.
pub fn parse<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Diagnostic> {
    let table = DeTable::parse(text).map_err(|e| diagnostic(path, text, &e))?;
    from_table(path, text, table)
}

/// Deserializes an already parsed document (or part of one).
pub fn from_table<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    table: Spanned<DeTable<'_>>,
) -> Result<T, Diagnostic> {
    T::deserialize(Deserializer::from(table)).map_err(|e| diagnostic(path, text, &e))
}

/// Deserializes one value of a parsed document.
pub fn from_value<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    value: Spanned<DeValue<'_>>,
) -> Result<T, Diagnostic> {
    T::deserialize(ValueDeserializer::from(value)).map_err(|e| diagnostic(path, text, &e))
}

/// A parse or type error of the toml crate, as a diagnostic.
pub fn diagnostic(path: &Path, text: &str, error: &toml::de::Error) -> Diagnostic {
    Diagnostic::spanned(path, text, error.span(), clean_message(error.message()))
}

/// toml's messages end in a newline and sometimes repeat themselves over
/// several lines; one line reads better after `path:line:column:`.
fn clean_message(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        #[serde(default)]
        packages: Vec<String>,
    }

    #[test]
    fn unknown_key_points_at_the_key() {
        let text = "name = \"ui\"\n\npakages = [\"nginx\"]\n";
        let d = parse::<Sample>(Path::new("recipes/ui.toml"), text).unwrap_err();
        assert_eq!((d.line, d.column), (3, 1), "{d}");
        assert!(d.message.contains("unknown field `pakages`"), "{d}");
    }

    #[test]
    fn syntax_error_has_a_position() {
        let text = "name = \"ui\"\npackages = [\"nginx\"\n";
        let d = parse::<Sample>(Path::new("x.toml"), text).unwrap_err();
        assert!(d.line >= 2, "{d}");
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let text = "name = 5\n";
        let d = parse::<Sample>(Path::new("x.toml"), text).unwrap_err();
        assert_eq!((d.line, d.column), (1, 8), "{d}");
    }
}
