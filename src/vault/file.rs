//! Reading a vault, and replacing it atomically with a private (0600) file
//! ([`crate::fsutil`]).

use std::fs;
use std::io;
use std::path::Path;

use crate::fsutil::Atomic;

/// The file's text (a vault is ASCII; anything else is not a vault and is
/// read lossily so the format check reports it).
pub fn read(path: &Path) -> io::Result<String> {
    let bytes = fs::read(path)?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Replaces `path`; a symlink is followed (to its final target, as
/// ansible-vault does): the link stays a link and the file it points to
/// gets `bytes`, so no old text stays behind it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let real;
    let path = match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            real = fs::canonicalize(path)?;
            real.as_path()
        }
        _ => path,
    };
    Ok(Atomic::new(".oxbake-vault-", ".tmp").write(path, bytes)?)
}

#[cfg(test)]
mod tests {
    use std::fs::Permissions;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_with_a_private_file_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.yml");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(read(&path).unwrap(), "new");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_link_stays_and_its_target_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (real, link, hop) = (
            dir.path().join("real/vault.yml"),
            dir.path().join("link.yml"),
            dir.path().join("hop.yml"),
        );
        fs::create_dir(dir.path().join("real")).unwrap();
        fs::write(&real, "old").unwrap();
        std::os::unix::fs::symlink("real/vault.yml", &hop).unwrap();
        std::os::unix::fs::symlink("hop.yml", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert!(fs::symlink_metadata(&hop).unwrap().is_symlink());
        assert_eq!(read(&real).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path().join("real")).unwrap().count(), 1);
        // A dangling link is an error, not a new file in its place.
        let dangling = dir.path().join("dangling.yml");
        std::os::unix::fs::symlink("nowhere.yml", &dangling).unwrap();
        assert!(write_atomic(&dangling, b"x").is_err());
        assert!(fs::symlink_metadata(&dangling).unwrap().is_symlink());
        assert!(!dir.path().join("nowhere.yml").exists());
    }
}
