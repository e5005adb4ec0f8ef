//! What oxbake reads of a qcow2 header itself: the backing file name, so the
//! backing chains of the disks it manages can be followed without QEMU. The
//! header starts with the magic `QFI\xfb`, the version (u32), the backing
//! file name's offset (u64) and size (u32), all big-endian.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::target::TargetError;

const MAGIC: &[u8; 4] = b"QFI\xfb";
/// QEMU refuses longer backing file names.
const MAX_NAME: u32 = 1023;
/// Chains deeper than this are taken for a loop.
const MAX_DEPTH: usize = 64;

fn bad(path: &Path, message: impl Into<String>) -> TargetError {
    TargetError::State {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// The backing file name recorded in the qcow2 image `path`, as written
/// (relative names are relative to the image's folder); `None` when it has
/// no backing file or is no qcow2 image (a raw file has none).
pub async fn backing_name(path: &Path) -> Result<Option<PathBuf>, TargetError> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| TargetError::io(path, e))?;
    let mut header = [0u8; 20];
    match file.read_exact(&mut header).await {
        Ok(_) => {}
        // Too short to be a qcow2 image.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(TargetError::io(path, e)),
    }
    if &header[..4] != MAGIC {
        // Not a qcow2 image (raw): no backing file.
        return Ok(None);
    }
    let offset = u64::from_be_bytes(header[8..16].try_into().unwrap_or_default());
    let size = u32::from_be_bytes(header[16..20].try_into().unwrap_or_default());
    if offset == 0 || size == 0 {
        return Ok(None);
    }
    if size > MAX_NAME {
        return Err(bad(path, format!("backing file name of {size} bytes")));
    }
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| TargetError::io(path, e))?;
    let mut name = vec![0u8; size as usize];
    file.read_exact(&mut name)
        .await
        .map_err(|e| TargetError::io(path, e))?;
    use std::os::unix::ffi::OsStringExt;
    Ok(Some(PathBuf::from(std::ffi::OsString::from_vec(name))))
}

/// The files below `image` in its backing chain, nearest first, each
/// resolved (symbolic links followed). The chain ends at an image without a
/// backing file or at a backing file that does not exist.
pub async fn backing_chain(image: &Path) -> Result<Vec<PathBuf>, TargetError> {
    let mut chain = Vec::new();
    let mut current = image.to_path_buf();
    while let Some(name) = backing_name(&current).await? {
        let dir = current.parent().unwrap_or(Path::new("."));
        let joined = dir.join(&name);
        let next = match tokio::fs::canonicalize(&joined).await {
            Ok(next) => next,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(TargetError::io(&joined, e)),
        };
        if chain.len() >= MAX_DEPTH || chain.contains(&next) {
            return Err(bad(image, "backing chain loops or is too deep"));
        }
        chain.push(next.clone());
        current = next;
    }
    Ok(chain)
}

/// The name to record as the backing file of an overlay in `overlay_dir`:
/// relative to that folder when both lie under `root` (the local target's
/// state folder, which may move with the project), else `backing` as is.
pub fn backing_for(overlay_dir: &Path, backing: &Path, root: &Path) -> PathBuf {
    let (Ok(from), Ok(to)) = (overlay_dir.strip_prefix(root), backing.strip_prefix(root)) else {
        return backing.to_path_buf();
    };
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in from.components().skip(common) {
        out.push("..");
    }
    out.extend(to.components().skip(common));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_img(args: &[&str], dir: &Path) {
        let ok = std::process::Command::new("qemu-img")
            .args(args)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "{args:?}");
    }

    #[tokio::test]
    async fn the_backing_chain_is_read_from_the_headers() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("t")).unwrap();
        std::fs::create_dir_all(d.join("v")).unwrap();
        qemu_img(&["create", "-q", "-f", "qcow2", "t/base.qcow2", "1M"], d);
        let to_base = ["-F", "qcow2", "-b", "base.qcow2", "t/mid.qcow2"];
        qemu_img(
            &[&["create", "-q", "-f", "qcow2"][..], &to_base].concat(),
            d,
        );
        let to_mid = ["-F", "qcow2", "-b", "../t/mid.qcow2", "v/top.qcow2"];
        qemu_img(&[&["create", "-q", "-f", "qcow2"][..], &to_mid].concat(), d);
        let root = d.canonicalize().unwrap();
        assert_eq!(
            backing_name(&d.join("v/top.qcow2")).await.unwrap(),
            Some(PathBuf::from("../t/mid.qcow2"))
        );
        assert_eq!(backing_name(&d.join("t/base.qcow2")).await.unwrap(), None);
        assert_eq!(
            backing_chain(&d.join("v/top.qcow2")).await.unwrap(),
            [root.join("t/mid.qcow2"), root.join("t/base.qcow2")]
        );
        std::fs::write(d.join("raw"), b"not qcow2 at all, just text").unwrap();
        assert_eq!(backing_name(&d.join("raw")).await.unwrap(), None);
        std::fs::write(d.join("short"), b"QFI").unwrap();
        assert_eq!(backing_name(&d.join("short")).await.unwrap(), None);
        let mut garbled = std::fs::read(d.join("t/mid.qcow2")).unwrap();
        garbled[16..20].copy_from_slice(&4096u32.to_be_bytes());
        std::fs::write(d.join("garbled"), garbled).unwrap();
        let err = backing_name(&d.join("garbled")).await.unwrap_err();
        assert!(
            err.to_string().contains("backing file name of 4096 bytes"),
            "{err}"
        );
    }

    #[test]
    fn backing_names_are_relative_inside_the_state_folder_only() {
        let root = Path::new("/p/.oxbake/local");
        let vm = root.join("vms/web-b");
        let tpl = root.join("templates/base-1.qcow2");
        assert_eq!(
            backing_for(&vm, &tpl, root),
            Path::new("../../templates/base-1.qcow2")
        );
        assert_eq!(
            backing_for(&root.join("templates"), &tpl, root),
            Path::new("base-1.qcow2")
        );
        assert_eq!(
            backing_for(&root.join("templates/sub"), &tpl, root),
            Path::new("../base-1.qcow2")
        );
        let cached = Path::new("/home/u/.cache/oxbake/base/b.qcow2");
        assert_eq!(backing_for(&vm, cached, root), cached);
    }
}
