//! Plain-text tables with aligned columns: the one renderer of every table
//! oxbake prints.

/// Renders `rows` under `headers` (if any), as [`layout`] does, with each
/// cell cut to its first line and control characters blanked so a row stays
/// one line.
pub fn render(indent: usize, headers: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| one_line(c)).collect())
        .collect();
    layout(indent, headers, &rows)
}

/// An operator's table: the headers upper-cased on the first line, then the
/// rows as they are.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let upper: Vec<String> = headers.iter().map(|h| h.to_uppercase()).collect();
    let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
    layout(0, &upper, rows)
}

/// Lays `rows` out under `headers` (if any): columns separated by two
/// spaces and padded to the widest cell, each line indented by `indent`
/// spaces and without trailing blanks.
fn layout(indent: usize, headers: &[&str], rows: &[Vec<String>]) -> String {
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_string()).collect();
    let all: Vec<&Vec<String>> = (!headers.is_empty())
        .then_some(&header_row)
        .into_iter()
        .chain(rows)
        .collect();
    let columns = all.iter().map(|row| row.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            all.iter()
                .filter_map(|row| row.get(i))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in all {
        let mut line = " ".repeat(indent);
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(cell);
            line.push_str(&" ".repeat(width - cell.chars().count() + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn one_line(cell: &str) -> String {
    let mut lines = cell.trim().lines();
    let first = lines.next().unwrap_or("").trim_end();
    let cleaned: String = first
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if lines.next().is_some() {
        format!("{cleaned} …")
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| (*c).to_string()).collect()
    }

    #[test]
    fn columns_line_up_and_lines_end_without_spaces() {
        let out = render(
            0,
            &["ROLE", "VERSION", "X"],
            &[
                row(&["ui", "2026.11.25.10", ""]),
                row(&["backend", "1", "é"]),
            ],
        );
        assert_eq!(
            out,
            "ROLE     VERSION        X\n\
             ui       2026.11.25.10\n\
             backend  1              é\n"
        );
    }

    #[test]
    fn multi_line_cells_keep_their_first_line_and_indent_applies() {
        let out = render(
            2,
            &[],
            &[row(&["a", "first\nsecond"]), row(&["bb", "tab\there"])],
        );
        assert_eq!(out, "  a   first …\n  bb  tab here\n");
    }

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
