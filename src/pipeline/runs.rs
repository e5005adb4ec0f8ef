//! Which runs are alive. Each build and smoke test writes
//! `.oxbake/runs/RUN_ID` holding its pid while it works; `oxbake gc` treats
//! a builder or smoke VM whose run has no such file, or whose process is
//! gone, as a leftover.

use std::path::{Path, PathBuf};

/// Removes the run file when dropped (also when the work fails or is
/// interrupted).
pub struct RunGuard {
    path: PathBuf,
}

impl RunGuard {
    /// Marks `run_id` alive. A failure to write only costs `gc` its
    /// knowledge of this run, so it is not an error.
    pub fn start(dir: &Path, run_id: &str) -> Self {
        let path = dir.join(run_id);
        let _ = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&path, crate::liveness::stamp()));
        Self { path }
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `run_id` is still being worked on by a live oxbake process.
pub fn is_alive(dir: &Path, run_id: &str) -> bool {
    crate::liveness::holder_alive(&dir.join(run_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_alive_while_its_guard_lives() {
        let dir = tempfile::tempdir().unwrap();
        {
            let _guard = RunGuard::start(dir.path(), "abc");
            // The test binary's own name contains "oxbake".
            assert!(is_alive(dir.path(), "abc"));
        }
        assert!(!is_alive(dir.path(), "abc"));
        std::fs::write(dir.path().join("dead"), "999999999").unwrap();
        assert!(!is_alive(dir.path(), "dead"));
    }
}
