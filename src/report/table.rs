//! Plain-text tables with aligned columns, for the reports.

/// Renders `rows` under `headers` (if any), columns separated by two spaces
/// and padded to the widest cell, each line indented by `indent` spaces.
/// Cells are cut to their first line so a row stays one line.
pub(crate) fn render(indent: usize, headers: &[&str], rows: &[Vec<String>]) -> String {
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_string()).collect();
    let all: Vec<Vec<String>> = (!headers.is_empty())
        .then_some(header_row)
        .into_iter()
        .chain(
            rows.iter()
                .map(|row| row.iter().map(|c| one_line(c)).collect()),
        )
        .collect();
    let columns = all.iter().map(Vec::len).max().unwrap_or(0);
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
    for row in &all {
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
}
