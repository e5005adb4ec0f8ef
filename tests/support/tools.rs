//! Programs that other people wrote, which the tests use to read what
//! oxbake writes (Ansible, the SBOM validators). CI installs them and sets
//! a `OXBAKE_REQUIRE_…` variable, so that a missing one fails there; on a
//! developer's machine without them the test says what it left out.

use std::path::PathBuf;

/// The first folder on PATH that holds every one of `programs`. When there
/// is none: a failure if `require` is set, else `None` and a line saying
/// what `left_out`.
pub fn folder_with(programs: &[&str], require: &str, left_out: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dir = std::env::split_paths(&path).find(|d| programs.iter().all(|p| d.join(p).is_file()));
    if dir.is_none() {
        assert!(
            std::env::var_os(require).is_none(),
            "{require} is set but {programs:?} are not on PATH"
        );
        eprintln!("{programs:?} not installed: {left_out}");
    }
    dir
}
