//! The templates a template includes, imports or extends, found by lexing
//! its tags (comments, `{{ … }}` and raw blocks skipped, strings read whole,
//! whitespace control `{%-`/`-%}` understood). A name is *literal* when the
//! expression is one plain string and nothing else; anything computed
//! (`secrets.key`, `"a" ~ x`, `["a", x]`, a variable) is not, so `check`
//! can refuse it: a computed name can reach a file no one reviewed, or put
//! a secret into an error message.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;

/// One include, import, from-import or extends tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `include`, `import`, `from` or `extends`.
    pub keyword: &'static str,
    /// Byte offset of the name's expression in the source.
    pub offset: usize,
    pub name: Name,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// One plain string literal.
    Literal(String),
    /// Anything else, as written (whitespace collapsed, shortened).
    Computed(String),
}

const KEYWORDS: [&str; 4] = ["include", "import", "from", "extends"];

/// Every reference in `source`, in order.
pub fn scan(source: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = source[i..].find('{').map(|p| p + i) {
        let rest = &source[at..];
        i = if rest.starts_with("{#") {
            match rest.find("#}") {
                Some(end) => at + end + 2,
                None => break,
            }
        } else if rest.starts_with("{{") {
            let (_, end) = tokens(source, at + 2, "}}");
            end
        } else if rest.starts_with("{%") {
            tag(source, at + 2, &mut found)
        } else {
            at + 1
        };
    }
    found
}

/// Lexes one `{% … %}` from just after `{%`; returns where to go on.
fn tag(source: &str, start: usize, found: &mut Vec<Reference>) -> usize {
    let start = start + usize::from(source[start..].starts_with(['-', '+']));
    let (toks, end) = tokens(source, start, "%}");
    let Some(first) = toks.first() else {
        return end;
    };
    let word = first.text(source);
    if word == "raw" {
        return end_of_raw(source, end);
    }
    let Some(keyword) = KEYWORDS.iter().find(|k| **k == word) else {
        return end;
    };
    // The name runs up to the tag's own next keyword, at bracket depth 0.
    let stops: &[&str] = match *keyword {
        "include" => &["ignore", "with", "without"],
        "import" => &["as"],
        "from" => &["import"],
        _ => &[],
    };
    let expr: Vec<&Tok> = toks[1..]
        .iter()
        .take_while(|t| t.depth > 0 || !stops.contains(&t.text(source)))
        .collect();
    let offset = expr.first().map_or(first.start, |t| t.start);
    let name = match expr.as_slice() {
        [one] if one.kind == Kind::Str => match plain_string(one.text(source)) {
            Some(s) => Name::Literal(s.to_owned()),
            None => Name::Computed(shown(source, &expr)),
        },
        _ => Name::Computed(shown(source, &expr)),
    };
    found.push(Reference {
        keyword,
        offset,
        name,
    });
    end
}

/// After `{% raw %}`: past the next `{% endraw %}` (any whitespace control).
fn end_of_raw(source: &str, mut i: usize) -> usize {
    while let Some(at) = source[i..].find("{%").map(|p| p + i) {
        let (toks, end) = tokens(
            source,
            at + 2 + usize::from(source[at + 2..].starts_with(['-', '+'])),
            "%}",
        );
        if toks.first().is_some_and(|t| t.text(source) == "endraw") {
            return end;
        }
        i = at + 2;
    }
    source.len()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Word,
    Punct,
}

#[derive(Debug)]
struct Tok {
    start: usize,
    end: usize,
    kind: Kind,
    /// Bracket depth before the token.
    depth: usize,
}

impl Tok {
    fn text<'s>(&self, source: &'s str) -> &'s str {
        &source[self.start..self.end]
    }
}

/// The tokens from `i` up to `close` (`%}` or `}}`, optionally after `-` or
/// `+`) outside strings and brackets, and the offset just past `close` (the
/// end of the text when it never closes).
fn tokens(source: &str, mut i: usize, close: &str) -> (Vec<Tok>, usize) {
    let bytes = source.as_bytes();
    let mut toks = Vec::new();
    let mut depth = 0usize;
    while i < bytes.len() {
        let rest = &source[i..];
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if depth == 0 {
            let ctl = usize::from(rest.starts_with(['-', '+']));
            if rest[ctl..].starts_with(close) {
                return (toks, i + ctl + close.len());
            }
        }
        let word = |ch: char| ch.is_alphanumeric() || ch == '_';
        let (end, kind) = match rest.chars().next().unwrap_or(' ') {
            '"' | '\'' => (string_end(bytes, i), Kind::Str),
            ch if word(ch) => (
                i + rest.find(|ch| !word(ch)).unwrap_or(rest.len()),
                Kind::Word,
            ),
            ch => (i + ch.len_utf8(), Kind::Punct),
        };
        let end = end.min(bytes.len());
        if matches!(c, b')' | b']' | b'}') {
            depth = depth.saturating_sub(1);
        }
        toks.push(Tok {
            start: i,
            end,
            kind,
            depth,
        });
        if matches!(c, b'(' | b'[' | b'{') {
            depth += 1;
        }
        i = end;
    }
    (toks, bytes.len())
}

/// Just past the string starting at `i` (its quote), escapes skipped.
fn string_end(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            b if b == quote => return j + 1,
            _ => j += 1,
        }
    }
    bytes.len()
}

/// The text of a quoted string without escapes (an escape makes the name
/// something to work out, not a plain path).
fn plain_string(quoted: &str) -> Option<&str> {
    let inner = quoted.get(1..quoted.len().checked_sub(1)?)?;
    let closed = quoted.len() >= 2 && quoted.ends_with(&quoted[..1]);
    (closed && !inner.contains('\\')).then_some(inner)
}

fn shown(source: &str, expr: &[&Tok]) -> String {
    let (Some(first), Some(last)) = (expr.first(), expr.last()) else {
        return String::new();
    };
    let text: Vec<&str> = source[first.start..last.end].split_whitespace().collect();
    let text = text.join(" ");
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Checks the references of template `path` (relative to the project,
/// `templates/…`) and, through literal names, of every template it reaches:
/// a computed name is refused in every file; a literal name that is not a
/// file under templates/ is refused in the files `path` reaches (`path`'s
/// own literal names are checked where the template is named).
pub fn problems(root: &Path, path: &Path, source: &str) -> Vec<Diagnostic> {
    let templates = root.join("templates");
    let mut out = Vec::new();
    let mut seen = BTreeSet::from([path.to_path_buf()]);
    let mut queue: Vec<(PathBuf, String, bool)> = vec![(path.into(), source.to_owned(), true)];
    while let Some((file, text, top)) = queue.pop() {
        for r in scan(&text) {
            match &r.name {
                Name::Computed(expr) => out.push(Diagnostic::at(
                    &file,
                    &text,
                    r.offset,
                    format!(
                        "`{}` must name its template by a string literal (a path under templates/), not `{expr}`",
                        r.keyword
                    ),
                )),
                Name::Literal(name) => {
                    let full = super::safe_join(&templates, name)
                        .filter(|p| p.is_file() && !super::escapes(root, p));
                    let Some(full) = full else {
                        if !top {
                            out.push(Diagnostic::at(
                                &file,
                                &text,
                                r.offset,
                                format!("template `{name}` does not exist in templates/"),
                            ));
                        }
                        continue;
                    };
                    let rel = Path::new("templates").join(name);
                    if seen.insert(rel.clone())
                        && let Ok(nested) = std::fs::read_to_string(&full)
                    {
                        queue.push((rel, nested, false));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
