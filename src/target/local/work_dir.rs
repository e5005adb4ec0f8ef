//! The scratch folder of a base image bootstrap or import. mmdebstrap
//! mounts proc, sysfs and devpts inside the root file system it builds and
//! unmounts them when it ends; stopped mid-way (an interrupt, SIGKILL after
//! the grace time) it can leave them mounted. A recursive removal must never
//! walk into a mounted file system, so a work folder is only removed after
//! what is mounted under it is unmounted, deepest first; a folder that still
//! holds a mount is left alone and named.

use std::path::{Path, PathBuf};

use crate::target::TargetError;

/// A work folder that goes, with anything mounted under it, when dropped.
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// A new folder `PREFIXxxxxxx` in `parent`. Its removal is this type's
    /// own (`remove`), not tempfile's recursive one.
    pub fn new_in(parent: &Path, prefix: &str) -> Result<Self, TargetError> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .map(|dir| Self(dir.keep()))
            .map_err(|e| TargetError::io(parent, e))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Errors have no one to go to here: the next holder of the base
        // lock sweeps the folder again and names what stops it.
        let _ = remove(&self.0);
    }
}

/// Unmounts what is mounted at or under `dir`, then removes it. Refuses
/// (and removes nothing) if a mount stays.
pub fn remove(dir: &Path) -> Result<(), TargetError> {
    let real = match dir.canonicalize() {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(TargetError::io(dir, e)),
    };
    for mount in mounts_under(&real)? {
        // Lazy: a process of the stopped tool may still hold it open.
        let _ = std::process::Command::new("umount")
            .arg("--lazy")
            .arg(&mount)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    if let Some(left) = mounts_under(&real)?.into_iter().next() {
        return Err(TargetError::io(
            dir,
            std::io::Error::other(format!(
                "`{}` is still mounted in it; unmount it, then remove the folder",
                left.display()
            )),
        ));
    }
    std::fs::remove_dir_all(&real).map_err(|e| TargetError::io(dir, e))
}

/// The mount points at or under `dir` in this process's mount table,
/// deepest first.
fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, TargetError> {
    let table = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(table).map_err(|e| TargetError::io(table, e))?;
    Ok(select_under(&text, dir))
}

fn select_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .filter(|point| point.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    found
}

/// Undoes the kernel's octal escapes in a mountinfo field (`\040` is a
/// space, `\011` a tab, `\012` a newline, `\134` a backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(digits) => {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 0:5 / /var/cache/x/base/.work-ab/rootfs/dev/pts rw - devpts none rw
91 22 0:6 / /var/cache/x/base/.work-ab/rootfs/proc rw - proc proc rw
92 91 0:7 / /var/cache/x/base/.work-ab/rootfs/proc/sys/fs/binfmt_misc rw - binfmt_misc none rw
93 22 0:8 / /var/cache/x/base/.work-abc/rootfs/sys rw - sysfs sysfs rw
94 22 0:9 / /var/cache/x/base/.work-ab/with\\040space rw - tmpfs none rw
";

    #[test]
    fn only_mounts_under_the_folder_deepest_first() {
        let found = select_under(TABLE, Path::new("/var/cache/x/base/.work-ab"));
        let found: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            found,
            [
                "/var/cache/x/base/.work-ab/rootfs/proc/sys/fs/binfmt_misc",
                "/var/cache/x/base/.work-ab/rootfs/dev/pts",
                "/var/cache/x/base/.work-ab/rootfs/proc",
                "/var/cache/x/base/.work-ab/with space",
            ]
        );
    }

    #[test]
    fn escapes_are_undone_and_a_lone_backslash_stays() {
        assert_eq!(unescape("a\\040b\\011c\\134d"), "a b\tc\\d");
        assert_eq!(unescape("a\\04"), "a\\04");
        assert_eq!(unescape("a\\9zzb"), "a\\9zzb");
    }

    #[test]
    fn a_missing_folder_is_already_removed() {
        let dir = tempfile::tempdir().unwrap();
        remove(&dir.path().join("gone")).unwrap();
    }

    #[test]
    fn a_mount_under_the_folder_is_unmounted_before_it_goes() {
        let parent = tempfile::tempdir().unwrap();
        let work = WorkDir::new_in(parent.path(), ".work-").unwrap();
        let path = work.path().canonicalize().unwrap();
        let point = path.join("rootfs/dev/pts");
        std::fs::create_dir_all(&point).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "oxbake-test"])
            .arg(&point)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let root = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
        if !root {
            // Mounting needs root (CI runs as root).
            return;
        }
        assert!(mounted, "mount -t tmpfs as root");
        std::fs::write(point.join("inside"), "x").unwrap();
        assert_eq!(mounts_under(&path).unwrap(), std::slice::from_ref(&point));
        drop(work);
        assert!(!path.exists());
        assert!(mounts_under(&path).unwrap().is_empty());
    }

    #[test]
    fn a_folder_without_mounts_goes_on_drop() {
        let parent = tempfile::tempdir().unwrap();
        let work = WorkDir::new_in(parent.path(), ".work-").unwrap();
        let path = work.path().to_path_buf();
        std::fs::create_dir_all(path.join("rootfs/dev")).unwrap();
        std::fs::write(path.join("rootfs/dev/null"), "").unwrap();
        drop(work);
        assert!(!path.exists());
    }
}
