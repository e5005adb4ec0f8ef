//! The last lines of a VM's serial console, for a boot that never answered:
//! where the guest stopped (a kernel panic, a unit waiting, a login prompt
//! without network) is what the operator needs to read first.

use std::path::Path;

/// Lines kept, and characters kept per line.
const LINES: usize = 4;
const WIDTH: usize = 120;

/// The console's last non-empty lines joined by ` | ` (terminal escapes and
/// control characters removed), or `None` when it has nothing to show.
pub async fn tail(serial_log: &Path) -> Option<String> {
    let bytes = tokio::fs::read(serial_log).await.ok()?;
    let text = plain(&String::from_utf8_lossy(&bytes));
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.chars().take(WIDTH).collect())
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(lines[lines.len().saturating_sub(LINES)..].join(" | "))
}

/// Text without ANSI escape sequences (`ESC [ … final`) and control
/// characters other than the line feed.
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, up to the final byte.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        if c == '\n' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_lines_without_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serial.log");
        assert_eq!(tail(&log).await, None);
        let mut text = String::new();
        for i in 0..10 {
            text.push_str(&format!("line {i}\r\n"));
        }
        text.push_str("[\u{1b}[0;32m  OK  \u{1b}[0m] Reached target \u{7}network.\r\n\r\n");
        text.push_str(&"x".repeat(500));
        tokio::fs::write(&log, text).await.unwrap();
        let got = tail(&log).await.unwrap();
        assert_eq!(
            got,
            format!(
                "line 8 | line 9 | [  OK  ] Reached target network. | {}",
                "x".repeat(WIDTH)
            )
        );
    }
}
