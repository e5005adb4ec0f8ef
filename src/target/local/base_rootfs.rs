//! The base image's root file system: mmdebstrap, then the files that make
//! it boot from its own disk and take its configuration from cloud-init.

use std::ffi::OsString;
use std::path::Path;

use tokio::process::Command;

use crate::suite::Suite;
use crate::target::{TargetError, exec};

/// The label of the root file system; fstab, GRUB and the kernel use it.
pub const ROOT_LABEL: &str = "oxbake-root";

const FSTAB: &str = "LABEL=oxbake-root / ext4 errors=remount-ro 0 1\n";

/// GRUB's menu: serial console, one entry titled after the release.
fn grub_cfg(suite: Suite) -> String {
    format!(
        "\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
menuentry \"Debian GNU/Linux {} (oxbake)\" {{
  search --no-floppy --label --set=root oxbake-root
  linux /vmlinuz root=LABEL=oxbake-root ro console=tty0 console=ttyS0,115200n8 net.ifnames=0
  initrd /initrd.img
}}
",
        suite.version()
    )
}

/// NoCloud first (the local target), ConfigDrive for Proxmox set-ups that use
/// it; `/etc/hosts` follows the host name; the C.UTF-8 locale needs no
/// generation.
const CLOUD_CFG: &str = "\
datasource_list: [ NoCloud, ConfigDrive, None ]
manage_etc_hosts: true
locale: C.UTF-8
";

/// The file contents that shape the image of `suite`, for the cache hash.
pub fn files_digest_input(suite: Suite) -> [String; 3] {
    [FSTAB.to_owned(), grub_cfg(suite), CLOUD_CFG.to_owned()]
}

/// Builds a root file system of `suite` at `rootfs` (which must not exist).
pub async fn debootstrap(
    suite: Suite,
    rootfs: &Path,
    mirror: &str,
    packages: &[String],
) -> Result<(), TargetError> {
    let mut cmd = Command::new("mmdebstrap");
    cmd.args(mmdebstrap_args(suite, rootfs, mirror, packages));
    exec::run(&mut cmd).await.map(drop)
}

/// mmdebstrap's arguments: the suite, the root file system, and the
/// release's own sources (`SUITE`, `SUITE-updates`, `SUITE-security`).
pub fn mmdebstrap_args(
    suite: Suite,
    rootfs: &Path,
    mirror: &str,
    packages: &[String],
) -> Vec<OsString> {
    let mirror = mirror.trim_end_matches('/');
    let security = mirror.replace("/debian", "/debian-security");
    let name = suite.name();
    let mut args: Vec<OsString> = ["--mode=root", "--variant=apt", "--quiet"]
        .into_iter()
        .map(OsString::from)
        .collect();
    let text = [
        format!("--include={}", packages.join(",")),
        format!(
            "--customize-hook=printf '%s' '{}' > \"$1/etc/fstab\"",
            FSTAB.trim_end()
        ),
        // The initramfs holds what a QEMU guest's root needs, not every
        // driver (MODULES=most: 36 MB, 1176 files); `dep` would look at
        // the build host's disk, not the guest's.
        "--customize-hook=printf 'MODULES=list\\n' > \"$1/etc/initramfs-tools/conf.d/oxbake\" && \
         printf 'virtio_pci\\nvirtio_blk\\nvirtio_scsi\\nvirtio_net\\next4\\ncrc32c_generic\\n' \
         >> \"$1/etc/initramfs-tools/modules\""
            .to_owned(),
        "--customize-hook=chroot \"$1\" update-initramfs -u -k all".to_owned(),
        // e2scrub_reap cleans LVM snapshots of an online ext4 check; these
        // images have no LVM, and it cost 7 s of every boot under TCG.
        "--customize-hook=ln -sf /dev/null \"$1/etc/systemd/system/e2scrub_reap.service\""
            .to_owned(),
        name.to_owned(),
    ];
    args.extend(text.into_iter().map(OsString::from));
    args.push(rootfs.as_os_str().to_owned());
    args.extend(
        [
            format!("deb {mirror} {name} main"),
            format!("deb {mirror} {name}-updates main"),
            format!("deb {security} {name}-security main"),
        ]
        .into_iter()
        .map(OsString::from),
    );
    args
}

/// Writes oxbake's files into the root file system and removes what must be
/// unique per VM (SSH host keys, machine id) or is only a cache.
pub async fn customize(suite: Suite, rootfs: &Path) -> Result<(), TargetError> {
    write(rootfs, "etc/fstab", FSTAB).await?;
    write(rootfs, "etc/hostname", "localhost\n").await?;
    write(rootfs, "etc/machine-id", "").await?;
    write(rootfs, "etc/cloud/cloud.cfg.d/90-oxbake.cfg", CLOUD_CFG).await?;
    write(rootfs, "boot/grub/grub.cfg", &grub_cfg(suite)).await?;
    copy_grub_modules(rootfs).await?;
    let mut doomed = vec![
        "var/lib/dbus/machine-id".to_string(),
        "vmlinuz.old".into(),
        "initrd.img.old".into(),
    ];
    doomed.extend(
        matching(&rootfs.join("etc/ssh"), "ssh_host_")
            .await?
            .into_iter()
            .map(|n| format!("etc/ssh/{n}")),
    );
    doomed.extend(
        matching(&rootfs.join("var/lib/apt/lists"), "")
            .await?
            .into_iter()
            .map(|n| format!("var/lib/apt/lists/{n}")),
    );
    for rel in doomed {
        remove(&rootfs.join(rel)).await?;
    }
    Ok(())
}

async fn write(rootfs: &Path, rel: &str, text: &str) -> Result<(), TargetError> {
    let path = rootfs.join(rel);
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| TargetError::io(parent, e))?;
    }
    tokio::fs::write(&path, text)
        .await
        .map_err(|e| TargetError::io(&path, e))
}

/// GRUB's modules go into the image so the boot menu can load more of them.
async fn copy_grub_modules(rootfs: &Path) -> Result<(), TargetError> {
    let src = Path::new(super::base_disk::GRUB_MODULES);
    let dst = rootfs.join("boot/grub/i386-pc");
    tokio::fs::create_dir_all(&dst)
        .await
        .map_err(|e| TargetError::io(&dst, e))?;
    for name in matching(src, "").await? {
        if name.ends_with(".mod") || name.ends_with(".lst") {
            let from = src.join(&name);
            tokio::fs::copy(&from, dst.join(&name))
                .await
                .map_err(|e| TargetError::io(&from, e))?;
        }
    }
    Ok(())
}

/// Names of the entries of `dir` that start with `prefix` (none if `dir` is missing).
async fn matching(dir: &Path, prefix: &str) -> Result<Vec<String>, TargetError> {
    let entries = super::files::entries(dir).await?;
    Ok(entries
        .into_iter()
        .map(|entry| entry.name)
        .filter(|name| name.starts_with(prefix))
        .collect())
}

async fn remove(path: &Path) -> Result<(), TargetError> {
    let result = match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.is_dir() => tokio::fs::remove_dir_all(path).await,
        Ok(_) => tokio::fs::remove_file(path).await,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|e| TargetError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(suite: Suite) -> Vec<String> {
        let packages = ["linux-image-amd64".to_owned(), "sudo".to_owned()];
        mmdebstrap_args(
            suite,
            Path::new("/w/rootfs"),
            "http://m.example/debian/",
            &packages,
        )
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect()
    }

    #[test]
    fn mmdebstrap_builds_the_suite_from_its_own_sources() {
        let trixie = args(Suite::Trixie);
        assert_eq!(
            trixie[trixie.len() - 5..],
            [
                "trixie",
                "/w/rootfs",
                "deb http://m.example/debian trixie main",
                "deb http://m.example/debian trixie-updates main",
                "deb http://m.example/debian-security trixie-security main",
            ]
        );
        assert!(trixie.contains(&"--include=linux-image-amd64,sudo".to_owned()));
        assert!(!trixie.iter().any(|a| a.contains("bookworm")), "{trixie:?}");
        let bookworm = args(Suite::Bookworm);
        assert_eq!(
            bookworm[bookworm.len() - 5..],
            [
                "bookworm",
                "/w/rootfs",
                "deb http://m.example/debian bookworm main",
                "deb http://m.example/debian bookworm-updates main",
                "deb http://m.example/debian-security bookworm-security main",
            ]
        );
        // Everything before the suite is the same for both.
        assert_eq!(trixie[..trixie.len() - 5], bookworm[..bookworm.len() - 5]);
    }

    #[test]
    fn the_boot_menu_names_the_release() {
        assert!(
            grub_cfg(Suite::Bookworm).contains("menuentry \"Debian GNU/Linux 12 (oxbake)\" {\n")
        );
        assert!(grub_cfg(Suite::Trixie).contains("menuentry \"Debian GNU/Linux 13 (oxbake)\" {\n"));
        let [_, grub, _] = files_digest_input(Suite::Trixie);
        assert_eq!(grub, grub_cfg(Suite::Trixie));
    }
}
