//! Leftovers of writers that were killed: `.oxbake-*.tmp` files (an atomic
//! write stopped before its rename, see `atomic.rs`) and removal markers
//! whose record is gone (a prune stopped between removing the record and
//! its marker), and placeholders of reserved versions whose process is gone
//! (a build killed between reserving its version and recording it). Every
//! change holds the exclusive lock and no writer works
//! without it, so whatever of this kind exists while the lock is held is
//! stale: the next writer removes it as it takes the lock. Best effort: a
//! leftover that cannot be removed does not stop the change (git ignores
//! the temporary files, see `.gitignore`).

use std::fs;
use std::path::Path;

use super::Registry;
use super::remove::MARKER_SUFFIX;
use super::writes::RESERVED_SUFFIX;

/// The prefix and suffix of the temporary files of [`super::atomic::write`].
pub(crate) const TMP_PREFIX: &str = ".oxbake-";
pub(crate) const TMP_SUFFIX: &str = ".tmp";

impl Registry {
    /// Removes the stale leftovers in `images/` and every folder in it, and
    /// in the summaries index's folder; the caller holds the exclusive lock.
    pub(crate) fn sweep(&self) {
        sweep_dir(&self.dir);
        if let Some(index) = &self.index {
            // A reader killed while it wrote the summaries index.
            sweep_dir(index);
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                sweep_dir(&entry.path());
            }
        }
    }
}

fn sweep_dir(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let stale = if name.starts_with(TMP_PREFIX) && name.ends_with(TMP_SUFFIX) {
            true
        } else if let Some(version) = name.strip_suffix(MARKER_SUFFIX) {
            !dir.join(format!("{version}.toml")).exists()
        } else if name.ends_with(RESERVED_SUFFIX) {
            // A live build holds its placeholder across the lock's release.
            !crate::liveness::holder_alive(&entry.path())
        } else {
            false
        };
        if stale && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(entry.path());
        }
    }
}
