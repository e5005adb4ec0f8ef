//! Atomic file replacement: write a temporary file in the same folder, fsync
//! it, rename it over the target, then fsync the folder so the rename itself
//! survives a crash. Readers see the old file or the new one, never a part.

use std::fs::{self, File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::RegistryError;

/// Whether an existing file may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overwrite {
    Allow,
    Refuse,
}

/// Writes `bytes` to `path` atomically; `label` names the file in errors.
/// With [`Overwrite::Refuse`] an existing file is left alone and the error
/// kind is `AlreadyExists`.
pub(crate) fn write(
    path: &Path,
    label: &Path,
    bytes: &[u8],
    overwrite: Overwrite,
) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let io = |action, err| RegistryError::io(action, label, err);
    let mut temp = tempfile::Builder::new()
        .prefix(super::sweep::TMP_PREFIX)
        .suffix(super::sweep::TMP_SUFFIX)
        .tempfile_in(dir)
        .map_err(|e| io("create a temporary file for", e))?;
    // Registry files are committed to git: readable by everyone, like any source file.
    fs::set_permissions(temp.path(), Permissions::from_mode(0o644))
        .map_err(|e| io("set permissions of", e))?;
    temp.write_all(bytes).map_err(|e| io("write", e))?;
    temp.as_file().sync_all().map_err(|e| io("sync", e))?;
    match overwrite {
        Overwrite::Allow => temp.persist(path).map(drop),
        Overwrite::Refuse => temp.persist_noclobber(path).map(drop),
    }
    .map_err(|e| io("rename a temporary file to", e.error))?;
    sync_dir(dir).map_err(|e| io("sync the folder of", e))
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        write(&path, &path, b"one", Overwrite::Allow).unwrap();
        write(&path, &path, b"two", Overwrite::Allow).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(names(dir.path()), ["a.toml"]);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn refuse_keeps_the_existing_file_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        write(&path, &path, b"first", Overwrite::Refuse).unwrap();
        let err = write(&path, &path, b"second", Overwrite::Refuse).unwrap_err();
        let RegistryError::Io { source, .. } = err else {
            panic!("unexpected error {err:?}");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
        assert_eq!(names(dir.path()), ["a.toml"]);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a folder, so the rename fails after the data was written.
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("x"), "keep").unwrap();
        assert!(write(&path, &path, b"data", Overwrite::Allow).is_err());
        assert_eq!(names(dir.path()), ["taken"]);
    }
}
