//! The base image's root file system: mmdebstrap, then the files that make
//! it boot from its own disk and take its configuration from cloud-init.

use std::path::Path;

use tokio::process::Command;

use crate::target::{TargetError, exec};

/// The label of the root file system; fstab, GRUB and the kernel use it.
pub const ROOT_LABEL: &str = "oxbake-root";

const FSTAB: &str = "LABEL=oxbake-root / ext4 errors=remount-ro 0 1\n";

const GRUB_CFG: &str = "\
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
menuentry \"Debian GNU/Linux 12 (oxbake)\" {
  search --no-floppy --label --set=root oxbake-root
  linux /vmlinuz root=LABEL=oxbake-root ro console=tty0 console=ttyS0,115200n8 net.ifnames=0
  initrd /initrd.img
}
";

/// NoCloud first (the local target), ConfigDrive for Proxmox set-ups that use
/// it; `/etc/hosts` follows the host name; the C.UTF-8 locale needs no
/// generation.
const CLOUD_CFG: &str = "\
datasource_list: [ NoCloud, ConfigDrive, None ]
manage_etc_hosts: true
locale: C.UTF-8
";

/// The file contents that shape the image, for the cache hash.
pub fn files_digest_input() -> impl Iterator<Item = &'static str> {
    [FSTAB, GRUB_CFG, CLOUD_CFG].into_iter()
}

/// Builds a bookworm root file system at `rootfs` (which must not exist).
pub async fn debootstrap(
    rootfs: &Path,
    mirror: &str,
    packages: &[String],
) -> Result<(), TargetError> {
    let mirror = mirror.trim_end_matches('/');
    let security = mirror.replace("/debian", "/debian-security");
    let mut cmd = Command::new("mmdebstrap");
    cmd.args(["--mode=root", "--variant=apt", "--quiet"])
        .arg(format!("--include={}", packages.join(",")))
        .arg(format!(
            "--customize-hook=printf '%s' '{}' > \"$1/etc/fstab\"",
            FSTAB.trim_end()
        ))
        // The initramfs holds what a QEMU guest's root needs, not every
        // driver (MODULES=most: 36 MB, 1176 files); `dep` would look at
        // the build host's disk, not the guest's.
        .arg(
            "--customize-hook=printf 'MODULES=list\\n' > \"$1/etc/initramfs-tools/conf.d/oxbake\" && \
             printf 'virtio_pci\\nvirtio_blk\\nvirtio_scsi\\nvirtio_net\\next4\\ncrc32c_generic\\n' \
             >> \"$1/etc/initramfs-tools/modules\"",
        )
        .arg("--customize-hook=chroot \"$1\" update-initramfs -u -k all")
        // e2scrub_reap cleans LVM snapshots of an online ext4 check; these
        // images have no LVM, and it cost 7 s of every boot under TCG.
        .arg("--customize-hook=ln -sf /dev/null \"$1/etc/systemd/system/e2scrub_reap.service\"")
        .arg("bookworm")
        .arg(rootfs)
        .arg(format!("deb {mirror} bookworm main"))
        .arg(format!("deb {mirror} bookworm-updates main"))
        .arg(format!("deb {security} bookworm-security main"));
    exec::run(&mut cmd).await.map(drop)
}

/// Writes oxbake's files into the root file system and removes what must be
/// unique per VM (SSH host keys, machine id) or is only a cache.
pub async fn customize(rootfs: &Path) -> Result<(), TargetError> {
    write(rootfs, "etc/fstab", FSTAB).await?;
    write(rootfs, "etc/hostname", "localhost\n").await?;
    write(rootfs, "etc/machine-id", "").await?;
    write(rootfs, "etc/cloud/cloud.cfg.d/90-oxbake.cfg", CLOUD_CFG).await?;
    write(rootfs, "boot/grub/grub.cfg", GRUB_CFG).await?;
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
