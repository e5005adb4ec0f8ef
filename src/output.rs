//! Where reports reach the operator: stdout for results (a table or one JSON
//! document), stderr for problems. The only printing outside progress.rs.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;

/// How a command's result is shown.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints a result: `json` with --json, else `text`.
    pub fn result(&self, text: &str, json: &serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = if self.json {
            writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(json).unwrap_or_default()
            )
        } else {
            write!(out, "{text}")
        };
        let _ = out.flush();
    }

    /// Prints one line about a problem.
    pub fn problem(&self, line: &str) {
        // A closed stderr must not turn a clean exit code into a panic.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}

/// Lays rows out in columns, two spaces apart, the header first.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["role", "hash"],
            &[
                vec!["ui".into(), "ab".into()],
                vec!["backend".into(), "c".into()],
            ],
        );
        assert_eq!(t, "ROLE     HASH\nui       ab\nbackend  c\n");
    }
}
