//! Figures the end-to-end tests measure (sizes, times, ratios): printed to
//! stderr, where `cargo test` shows them only for a failing test, and
//! appended to `CARGO_TARGET_TMPDIR/figures.txt`, which `.ci/run` prints
//! at its end whatever the outcome.

use std::io::Write;
use std::path::PathBuf;

/// The file the figures of a run go to.
pub fn file() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("figures.txt")
}

/// Prints `text` and appends it (one line per line) to [`file`].
pub fn figure(text: impl AsRef<str>) {
    let text = text.as_ref();
    eprintln!("{text}");
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file())
        .and_then(|mut f| f.write_all(format!("{}\n", text.trim_end()).as_bytes()));
    if let Err(e) = appended {
        eprintln!("figures: cannot append to {}: {e}", file().display());
    }
}
