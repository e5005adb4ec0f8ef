//! Whether the oxbake process that left a file behind still runs. Files that
//! stand for work in progress (a run's `.oxbake/runs/RUN_ID`, a reserved
//! version's placeholder in images/) hold the pid of their writer; a reader
//! that finds one whose process is gone knows the work was killed.

use std::path::Path;

/// What a work-in-progress file holds: this process's pid.
pub fn stamp() -> String {
    std::process::id().to_string()
}

/// Whether the pid in `file` is a live oxbake process (a missing or
/// unreadable file, or one that names no pid, is not).
pub fn holder_alive(file: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(file) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<u32>() else {
        return false;
    };
    // A pid is reused: it counts only while it is an oxbake process.
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmdline| String::from_utf8_lossy(&cmdline).contains("oxbake"))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_held_while_its_writer_runs_and_not_after() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join("mine");
        std::fs::write(&mine, stamp()).unwrap();
        // This test binary's path names the crate.
        assert!(holder_alive(&mine));
        // A child that has exited and been reaped holds nothing.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = dir.path().join("gone");
        std::fs::write(&gone, pid.to_string()).unwrap();
        assert!(!holder_alive(&gone));
        std::fs::write(&gone, "not a pid").unwrap();
        assert!(!holder_alive(&gone));
        assert!(!holder_alive(&dir.path().join("missing")));
    }
}
