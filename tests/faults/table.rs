//! The matrix's table: one row per injected fault, printed with totals, so
//! a CI log shows at a glance what was injected and what survived.

use std::fmt::Write as _;
use std::path::Path;

use super::leftovers::RegistrySnapshot;
use super::runner::Outcome;

/// The outcome of one injected fault.
#[derive(Debug, Clone)]
pub struct Row {
    pub fault: String,
    pub step: String,
    pub expected: i32,
    pub code: i32,
    /// What was found after the run (VMs, overlays, seeds, processes…).
    pub leftovers: Vec<String>,
    /// Registry files changed, unreadable or added.
    pub corrupted: Vec<String>,
    /// What the error output had to say and did not.
    pub unclear: Vec<String>,
    pub secs: u64,
}

impl Row {
    pub fn survived(&self) -> bool {
        self.code == self.expected
            && self.leftovers.is_empty()
            && self.corrupted.is_empty()
            && self.unclear.is_empty()
    }
}

/// The rows of one matrix, in the order the faults were injected.
#[derive(Debug, Default)]
pub struct Matrix {
    pub title: String,
    pub rows: Vec<Row>,
}

impl Matrix {
    pub fn new(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Row) {
        eprintln!("{}", render_row(&row));
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let mut out = format!("\nfault matrix: {}\n", self.title);
        let _ = writeln!(
            out,
            "{:<44} {:<30} {:>4} {:>4} {:<8} {:>9} {:>9} {:>5}",
            "fault", "step", "exit", "want", "survived", "leftovers", "corrupted", "secs"
        );
        for row in &self.rows {
            let _ = writeln!(out, "{}", render_row(row));
        }
        let survived = self.rows.iter().filter(|r| r.survived()).count();
        let leftovers: usize = self.rows.iter().map(|r| r.leftovers.len()).sum();
        let corrupted: usize = self.rows.iter().map(|r| r.corrupted.len()).sum();
        let _ = writeln!(
            out,
            "totals: {} faults injected, {survived} survived, {leftovers} leftovers, \
             {corrupted} corrupted records",
            self.rows.len()
        );
        for row in self.rows.iter().filter(|r| !r.survived()) {
            let _ = writeln!(
                out,
                "  FAILED {} @ {}: exit {} (want {}); leftovers {:?}; corrupted {:?}; unclear {:?}",
                row.fault,
                row.step,
                row.code,
                row.expected,
                row.leftovers,
                row.corrupted,
                row.unclear
            );
        }
        out
    }

    /// Prints the table and fails the test unless every fault survived.
    /// The table goes straight to the process's stderr in one write, past
    /// the test harness's capture, so that a plain `cargo test` (CI) shows
    /// it too.
    pub fn finish(self) {
        let text = self.render();
        let _ = std::io::Write::write_all(
            &mut std::io::stderr().lock(),
            format!("\n{text}\n").as_bytes(),
        );
        assert!(
            self.rows.iter().all(Row::survived),
            "some faults were not survived:{text}"
        );
        assert!(!self.rows.is_empty(), "no fault was injected");
    }
}

fn render_row(row: &Row) -> String {
    format!(
        "{:<44} {:<30} {:>4} {:>4} {:<8} {:>9} {:>9} {:>5}",
        row.fault,
        row.step,
        row.code,
        row.expected,
        if row.survived() { "yes" } else { "NO" },
        row.leftovers.len(),
        row.corrupted.len(),
        row.secs
    )
}

/// A row from an outcome; `says` must all appear in stderr.
#[allow(clippy::too_many_arguments)]
pub fn row(
    fault: &str,
    step: &str,
    expected: i32,
    says: &[&str],
    out: &Outcome,
    leftovers: Vec<String>,
    before: &RegistrySnapshot,
    root: &Path,
) -> Row {
    let mut unclear: Vec<String> = says
        .iter()
        .filter(|s| !out.stderr.contains(**s))
        .map(|s| format!("stderr lacks `{s}`"))
        .collect();
    if !out.fired {
        unclear.push("the fault's trigger line never showed".to_owned());
    }
    if out.code != expected || !unclear.is_empty() {
        unclear.push(format!("stderr was:\n{}", out.stderr));
    }
    Row {
        fault: fault.to_owned(),
        step: step.to_owned(),
        expected,
        code: out.code,
        leftovers,
        corrupted: before.changes(root),
        unclear,
        secs: out.elapsed.as_secs(),
    }
}
