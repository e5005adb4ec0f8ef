//! Work folders under `.oxbake/scratch/`: a raw copy of an image being read
//! (`inspect-…`), a flattened image being published (`publish-…`). They
//! are as large as an image, and a process that is killed cannot remove
//! its own, so each folder holds an `owner` file with its process's pid
//! ([`crate::liveness`]) and [`sweep`] (`oxbake gc`) removes the folders of
//! processes that ended.

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::liveness;

/// The file in each folder that names the process working in it.
const OWNER: &str = "owner";

/// A folder without an owner is an older oxbake's, or one whose process
/// was killed between making it and writing the owner: it counts as ended
/// once it is this old.
const UNOWNED_AFTER: Duration = Duration::from_secs(60);

/// A new folder `PREFIX…` under `parent` (made if missing), owned by this
/// process; removed when dropped.
pub fn folder(parent: &Path, prefix: &str) -> io::Result<tempfile::TempDir> {
    std::fs::create_dir_all(parent)?;
    let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(parent)?;
    std::fs::write(dir.path().join(OWNER), liveness::stamp())?;
    Ok(dir)
}

/// A folder whose process ended, and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct Leftover {
    pub name: String,
    /// What it held (apparent sizes of its files).
    pub bytes: u64,
    pub removed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The folders under `parent` whose process ended and, unless `dry_run`,
/// removed. A missing `parent` has none.
pub fn sweep(parent: &Path, dry_run: bool) -> io::Result<Vec<Leftover>> {
    let entries = match std::fs::read_dir(parent) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        // Only folders: a symlink is not followed, a file is not ours.
        if !entry.file_type()?.is_dir() || !ended(&path) {
            continue;
        }
        let mut leftover = Leftover {
            name: entry.file_name().to_string_lossy().into_owned(),
            bytes: size(&path),
            removed: false,
            error: None,
        };
        if !dry_run {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => leftover.removed = true,
                Err(e) => leftover.error = Some(e.to_string()),
            }
        }
        found.push(leftover);
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

fn ended(folder: &Path) -> bool {
    let owner = folder.join(OWNER);
    if owner.exists() {
        return !liveness::holder_alive(&owner);
    }
    let modified = std::fs::metadata(folder).and_then(|m| m.modified());
    let age = modified.map(|m| SystemTime::now().duration_since(m).unwrap_or_default());
    age.is_ok_and(|age| age >= UNOWNED_AFTER)
}

/// The apparent size of the files under `path` (symlinks not followed).
fn size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process has: a reaped child's.
    fn dead_pid() -> String {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid.to_string()
    }

    #[test]
    fn only_the_folders_of_ended_processes_go() {
        let parent = tempfile::tempdir().unwrap();
        let scratch = parent.path().join("scratch");
        assert!(sweep(&scratch, false).unwrap().is_empty(), "no folder yet");
        let mine = folder(&scratch, "publish-").unwrap();
        std::fs::write(mine.path().join("flat.qcow2"), [0u8; 100]).unwrap();
        let killed = folder(&scratch, "inspect-").unwrap().keep();
        let pid = dead_pid();
        std::fs::write(killed.join(OWNER), &pid).unwrap();
        std::fs::write(killed.join("disk.raw"), [0u8; 4096]).unwrap();
        // Fresh and unowned: maybe a process between its two steps.
        let fresh = scratch.join("publish-fresh");
        std::fs::create_dir(&fresh).unwrap();
        // Not a folder: not ours.
        std::fs::write(scratch.join("a-file"), "x").unwrap();

        let seen = sweep(&scratch, true).unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].name, killed.file_name().unwrap().to_string_lossy());
        assert_eq!(seen[0].bytes, 4096 + pid.len() as u64);
        assert!(
            !seen[0].removed && killed.exists(),
            "--dry-run removes nothing"
        );

        let swept = sweep(&scratch, false).unwrap();
        assert_eq!(swept.len(), 1, "{swept:?}");
        assert!(swept[0].removed && swept[0].error.is_none(), "{swept:?}");
        assert!(!killed.exists());
        assert!(
            mine.path().join("flat.qcow2").exists(),
            "a live process's stays"
        );
        assert!(fresh.exists() && scratch.join("a-file").exists());

        // An unowned folder older than a minute goes.
        let old = SystemTime::now() - UNOWNED_AFTER - Duration::from_secs(5);
        std::fs::File::open(&fresh)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let swept = sweep(&scratch, false).unwrap();
        assert_eq!(swept.len(), 1, "{swept:?}");
        assert!(!fresh.exists());
        drop(mine);
        assert!(sweep(&scratch, false).unwrap().is_empty());
    }
}
