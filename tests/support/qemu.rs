//! Finding and reaping QEMU processes that belong to a test's project.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Kills whatever QEMU the test left running if it fails half-way.
pub struct Reaper(pub PathBuf);

impl Drop for Reaper {
    fn drop(&mut self) {
        for pid in qemu_pids(&self.0) {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }
}

/// Pids of QEMU processes whose command line mentions `project`.
pub fn qemu_pids(project: &Path) -> Vec<String> {
    let needle = project.to_string_lossy().into_owned();
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.starts_with("qemu-system") && cmdline.contains(&needle) {
            pids.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    pids
}
