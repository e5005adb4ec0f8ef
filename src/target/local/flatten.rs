//! A template as one self-contained qcow2 (`oxbake publish` ships it):
//! templates of roles built on other roles are overlays on their parent's
//! file, so the whole backing chain is read into a new file with no
//! backing file.

use std::path::Path;

use tokio::process::Command;

use crate::target::{TargetError, exec};

/// Writes `template` and everything it is backed by into `into`, a qcow2
/// without a backing file. `into` must not exist yet; a failure removes
/// what was written.
pub async fn flatten(template: &Path, into: &Path) -> Result<(), TargetError> {
    let mut cmd = Command::new("qemu-img");
    cmd.args(["convert", "-q", "-O", "qcow2"])
        .arg(template)
        .arg(into);
    let done = exec::run(&mut cmd).await;
    if done.is_err() {
        let _ = tokio::fs::remove_file(into).await;
    }
    done.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_img(args: &[&str], dir: &Path) -> String {
        let out = std::process::Command::new("qemu-img")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[tokio::test]
    async fn an_overlay_becomes_one_file_without_a_backing_file() {
        let dir = tempfile::tempdir().unwrap();
        qemu_img(
            &["create", "-q", "-f", "qcow2", "base.qcow2", "16M"],
            dir.path(),
        );
        qemu_img(
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "qcow2",
                "-b",
                "base.qcow2",
                "top.qcow2",
            ],
            dir.path(),
        );
        let flat = dir.path().join("flat.qcow2");
        flatten(&dir.path().join("top.qcow2"), &flat).await.unwrap();
        let info = qemu_img(&["info", "--output=json", "flat.qcow2"], dir.path());
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["format"], "qcow2");
        assert_eq!(info["virtual-size"], 16 * 1024 * 1024);
        assert!(info.get("backing-filename").is_none(), "{info}");
        let missing = flatten(&dir.path().join("nope.qcow2"), &dir.path().join("x.qcow2")).await;
        assert!(missing.is_err());
        assert!(!dir.path().join("x.qcow2").exists());
    }
}
