//! Reading TOML input files into typed values, with every error turned into
//! a [`Diagnostic`] that points at the offending line and column.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer, ValueDeserializer};

use crate::diag::{Diagnostic, Diagnostics};

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

/// A document read as a `T` except the value of one key, taken out raw to
/// be read on its own (its items' shapes depend on what they hold).
pub struct Without<'a, T> {
    pub rest: Result<T, Diagnostic>,
    pub taken: Option<Spanned<DeValue<'a>>>,
    /// Where every key and value of the whole document is.
    pub source: Source,
}

/// Parses `text` (the contents of `path`) as a `T` except the value of `key`.
pub fn parse_without<'a, T: DeserializeOwned>(
    path: &Path,
    text: &'a str,
    key: &str,
) -> Result<Without<'a, T>, Diagnostics> {
    let mut doc = DeTable::parse(text).map_err(|e| {
        let mut all = Diagnostics::default();
        all.push(diagnostic(path, text, &e));
        all
    })?;
    let source = Source::new(path, text, doc.get_ref());
    let taken = doc.get_mut().remove(key);
    Ok(Without {
        rest: from_table(path, text, doc),
        taken,
        source,
    })
}

/// The rest of a [`parse_without`] with `finish` applied (it puts the taken
/// part back) if no problem was found; otherwise every problem, the rest's
/// own last.
pub fn combine<T>(
    rest: Result<T, Diagnostic>,
    mut problems: Diagnostics,
    finish: impl FnOnce(&mut T),
) -> Result<T, Diagnostics> {
    match rest {
        Ok(mut value) if problems.is_empty() => {
            finish(&mut value);
            Ok(value)
        }
        Ok(_) => Err(problems),
        Err(d) => {
            problems.push(d);
            Err(problems)
        }
    }
}

/// A table whose `kind` key picks its shape, with `kind` taken out.
pub struct Kinded<'a> {
    pub kind: Spanned<DeValue<'a>>,
    /// The other keys; the caller may take more before [`Kinded::rest`].
    pub table: DeTable<'a>,
    pub span: Range<usize>,
}

impl<'a> Kinded<'a> {
    /// Splits `item`; `not_table` and `no_kind` are the errors for an item
    /// that is no table or has no `kind` (at the item's start).
    pub fn split(
        path: &Path,
        text: &str,
        item: Spanned<DeValue<'a>>,
        not_table: &str,
        no_kind: &str,
    ) -> Result<Self, Diagnostic> {
        let span = item.span();
        let DeValue::Table(mut table) = item.into_inner() else {
            return Err(Diagnostic::at(path, text, span.start, not_table));
        };
        let kind = table
            .remove("kind")
            .ok_or_else(|| Diagnostic::at(path, text, span.start, no_kind))?;
        Ok(Self { kind, table, span })
    }

    /// The kind's name, if it is a string.
    pub fn name(&self) -> Option<&str> {
        self.kind.get_ref().as_str()
    }

    /// Where the kind's value starts.
    pub fn kind_offset(&self) -> usize {
        self.kind.span().start
    }

    /// The other keys, as one value to read in the kind's shape.
    pub fn rest(self) -> Spanned<DeValue<'a>> {
        Spanned::new(self.span, DeValue::Table(self.table))
    }
}

/// A file's text with where each of its keys and values is, taken from the
/// one parse of it: the checks made after the typed read (which keeps no
/// spans) point into the file with it.
#[derive(Debug, Clone, Default)]
pub struct Source {
    path: PathBuf,
    text: String,
    /// By the keys' path (array items by their index in decimal).
    places: BTreeMap<Vec<String>, Place>,
}

/// Where one key and its value are.
#[derive(Debug, Clone)]
struct Place {
    key: usize,
    value: Range<usize>,
}

impl Source {
    /// The places of every key and value of `table`, parsed from `text`.
    pub fn new(path: &Path, text: &str, table: &DeTable<'_>) -> Self {
        let mut places = BTreeMap::new();
        index(table, &mut Vec::new(), &mut places);
        Self {
            path: path.to_path_buf(),
            text: text.to_owned(),
            places,
        }
    }

    /// Where the value at `keys` starts (as [`value_span`] finds it); None
    /// when the file does not hold it (a default applies).
    pub fn value_start(&self, keys: &[&str]) -> Option<usize> {
        self.place(keys).map(|p| p.value.start)
    }

    /// Where the key at the end of `keys` starts (an array item's value).
    pub fn key_start(&self, keys: &[&str]) -> Option<usize> {
        self.place(keys).map(|p| p.key)
    }

    /// A problem at a byte offset of the file.
    pub fn at(&self, offset: usize, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(&self.path, &self.text, offset, message)
    }

    fn place(&self, keys: &[&str]) -> Option<&Place> {
        let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.places.get(&keys)
    }
}

fn index(table: &DeTable<'_>, path: &mut Vec<String>, places: &mut BTreeMap<Vec<String>, Place>) {
    for (key, value) in table {
        path.push(key.get_ref().to_string());
        let key = key.span().start;
        add(value, key, path, places);
        path.pop();
    }
}

fn add(
    value: &Spanned<DeValue<'_>>,
    key: usize,
    path: &mut Vec<String>,
    places: &mut BTreeMap<Vec<String>, Place>,
) {
    let span = value.span();
    places.insert(
        path.clone(),
        Place {
            key,
            value: span.clone(),
        },
    );
    match value.get_ref() {
        DeValue::Table(t) => index(t, path, places),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                add(item, item.span().start, path, places);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Where the value at `keys` of a parsed document is: table keys by name,
/// array items by their index in decimal (`["check", "2", "exit"]`). None
/// when the document does not hold it (a default applies).
pub fn value_span(table: &DeTable<'_>, keys: &[&str]) -> Option<Range<usize>> {
    let (first, rest) = keys.split_first()?;
    let mut value = table.get(*first)?;
    for key in rest {
        value = match value.get_ref() {
            DeValue::Table(t) => t.get(*key)?,
            DeValue::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(value.span())
}

/// Where the value at `keys` of `text` starts, for a check made after the
/// typed read (which keeps no spans); 0 (the file's top) if it is not there.
pub fn offset_of(text: &str, keys: &[&str]) -> usize {
    DeTable::parse(text)
        .ok()
        .and_then(|doc| value_span(doc.get_ref(), keys))
        .map_or(0, |span| span.start)
}

/// Why the path `value` of `key` is refused, if it holds a control
/// character (a newline, an escape, NUL…): no file oxbake reads or writes
/// is meant to have one, and shown in a terminal it could rewrite the
/// screen. The message shows the value escaped.
pub fn plain_path(key: &str, value: &str) -> Option<String> {
    value.chars().any(char::is_control).then(|| {
        format!(
            "`{key}` = \"{}\" holds a control character; paths must be plain text",
            value.escape_default()
        )
    })
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

    #[test]
    fn a_key_is_taken_out_and_read_by_its_kind() {
        let text = "name = \"ui\"\n[item]\nkind = \"a\"\nx = 1\n";
        let path = Path::new("x.toml");
        let doc = parse_without::<Sample>(path, text, "item").unwrap();
        let item = Kinded::split(path, text, doc.taken.unwrap(), "not a table", "no kind").unwrap();
        assert_eq!(item.name(), Some("a"));
        assert_eq!(item.kind_offset(), text.find("\"a\"").unwrap());
        assert!(item.table.contains_key("x") && !item.table.contains_key("kind"));
        let sample = combine(doc.rest, Diagnostics::default(), |s| {
            s.packages.push("x".into())
        });
        assert_eq!(sample.unwrap().packages, ["x"]);
    }

    #[test]
    fn value_spans_follow_tables_and_array_items() {
        let text = "[a]\nb = 1\n[[c]]\nd = 2\n[[c]]\nd = 3\n";
        let at = |keys: &[&str]| {
            let offset = offset_of(text, keys);
            crate::diag::line_column(text, offset)
        };
        assert_eq!(at(&["a", "b"]), (2, 5));
        assert_eq!(at(&["c", "1", "d"]), (6, 5));
        assert_eq!(at(&["c", "2", "d"]), (1, 1));
        assert_eq!(at(&["a", "x"]), (1, 1));
    }

    #[test]
    fn a_source_finds_what_value_span_finds_and_the_keys() {
        let text = "[a]\nb = 1\n[[c]]\nd = 2\n[[c]]\nd = 3\n[e]\nf.g = [4, 5]\n";
        let doc = DeTable::parse(text).unwrap();
        let source = Source::new(Path::new("x.toml"), text, doc.get_ref());
        for keys in [
            &["a", "b"][..],
            &["c", "1", "d"],
            &["c", "2", "d"],
            &["a", "x"],
            &["e", "f", "g", "1"],
            &["c"],
        ] {
            let span = value_span(doc.get_ref(), keys).map(|s| s.start);
            assert_eq!(source.value_start(keys), span, "{keys:?}");
        }
        assert_eq!(source.key_start(&["a", "b"]), Some(4));
        let d = source.at(text.find("d = 3").unwrap(), "here");
        assert_eq!((d.line, d.column), (6, 1), "{d}");
    }

    #[test]
    fn an_item_without_a_table_or_kind_is_refused_at_its_start() {
        let text = "a = 5\n[b]\nx = 1\n";
        let path = Path::new("x.toml");
        let mut doc = DeTable::parse(text).unwrap().into_inner();
        let a = doc.remove("a").unwrap();
        let Err(d) = Kinded::split(path, text, a, "not a table", "no kind") else {
            panic!("a number split")
        };
        assert_eq!(
            (d.line, d.column, d.message.as_str()),
            (1, 5, "not a table")
        );
        let b = doc.remove("b").unwrap();
        let Err(d) = Kinded::split(path, text, b, "not a table", "no kind") else {
            panic!("no kind split")
        };
        assert_eq!(d.message, "no kind");
        let mut problems = Diagnostics::default();
        problems.push(d);
        let rest: Result<Sample, Diagnostic> = parse(path, "name = 1\n");
        assert_eq!(combine(rest, problems, |_| ()).unwrap_err().len(), 2);
    }
}
