//! Registry files are replaced with the one atomic writer
//! ([`crate::fsutil`]); its temporary files carry the names
//! [`super::sweep`] knows to clear.

use std::path::Path;

pub(crate) use crate::fsutil::sync_dir;
use crate::fsutil::{Atomic, WriteError};

use super::RegistryError;

/// Whether an existing file may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overwrite {
    Allow,
    Refuse,
}

/// Registry files are committed to git: readable by everyone, like any
/// source file.
const REGISTRY_FILE: Atomic =
    Atomic::new(super::sweep::TMP_PREFIX, super::sweep::TMP_SUFFIX).exact_mode(0o644);

/// Writes `bytes` to `path` atomically; `label` names the file in errors.
/// With [`Overwrite::Refuse`] an existing file is left alone and the error
/// kind is `AlreadyExists`.
pub(crate) fn write(
    path: &Path,
    label: &Path,
    bytes: &[u8],
    overwrite: Overwrite,
) -> Result<(), RegistryError> {
    let how = match overwrite {
        Overwrite::Allow => REGISTRY_FILE,
        Overwrite::Refuse => REGISTRY_FILE.no_replace(),
    };
    how.write(path, bytes)
        .map_err(|WriteError { step, source, .. }| RegistryError::io(step.action(), label, source))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::fsutil::tests::names;

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
