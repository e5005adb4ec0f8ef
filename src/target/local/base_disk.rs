//! Turns a root file system folder into a bootable disk: an MBR partition
//! table, one ext4 partition from 1 MiB on (filled by `mkfs.ext4 -d`, with no
//! mount and no loop device), and GRUB's BIOS boot code (boot.img in the MBR,
//! core.img in the gap before the partition), which is what `grub-install`
//! would write.

use std::path::Path;

use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::process::Command;

use super::base_rootfs::ROOT_LABEL;
use crate::target::{TargetError, exec};

/// Where grub-pc-bin keeps the BIOS GRUB images and modules.
pub const GRUB_MODULES: &str = "/usr/lib/grub/i386-pc";

const PART_START: u64 = 1 << 20;
const SECTOR: u64 = 512;
/// boot.img's code area; the partition table follows it.
const MBR_CODE: usize = 446;

const CORE_MODULES: &[&str] = &[
    "biosdisk",
    "part_msdos",
    "ext2",
    "normal",
    "linux",
    "search",
    "search_label",
    "configfile",
    "echo",
    "test",
    "serial",
    "terminal",
    "gzio",
];

/// Writes a raw disk image of `gib` GiB at `raw` holding `rootfs`.
pub async fn make_raw(rootfs: &Path, raw: &Path, gib: u32) -> Result<(), TargetError> {
    let size = u64::from(gib) << 30;
    let file = tokio::fs::File::create(raw)
        .await
        .map_err(|e| TargetError::io(raw, e))?;
    file.set_len(size)
        .await
        .map_err(|e| TargetError::io(raw, e))?;
    drop(file);
    partition(raw).await?;
    let kib = (size - PART_START) / 1024;
    exec::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", ROOT_LABEL])
            .arg("-E")
            .arg(format!("offset={PART_START}"))
            .arg("-d")
            .arg(rootfs)
            .arg(raw)
            .arg(format!("{kib}k")),
    )
    .await?;
    install_grub(raw).await
}

/// `qemu-img convert` to a compact qcow2.
pub async fn convert_to_qcow2(raw: &Path, qcow2: &Path) -> Result<(), TargetError> {
    exec::run(
        Command::new("qemu-img")
            .args(["convert", "-O", "qcow2"])
            .arg(raw)
            .arg(qcow2),
    )
    .await
    .map(drop)
}

async fn partition(raw: &Path) -> Result<(), TargetError> {
    let script = format!(
        "label: dos\nstart={}, type=83, bootable\n",
        PART_START / SECTOR
    );
    let mut child = Command::new("sfdisk")
        .args(["--quiet", "--no-reread", "--no-tell-kernel"])
        .arg(raw)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| TargetError::Spawn {
            program: "sfdisk".into(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| TargetError::io(raw, e))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| TargetError::io(raw, e))?;
    if out.status.success() {
        return Ok(());
    }
    Err(TargetError::Command {
        command: format!("sfdisk {}", raw.display()),
        status: out.status.to_string(),
        stderr: exec::tail(&String::from_utf8_lossy(&out.stderr), 20),
    })
}

async fn install_grub(raw: &Path) -> Result<(), TargetError> {
    let core = raw.with_extension("core.img");
    exec::run(
        Command::new("grub-mkimage")
            .args(["-O", "i386-pc", "-p", "(hd0,msdos1)/boot/grub", "-o"])
            .arg(&core)
            .args(CORE_MODULES),
    )
    .await?;
    let core_bytes = tokio::fs::read(&core)
        .await
        .map_err(|e| TargetError::io(&core, e))?;
    if core_bytes.len() as u64 > PART_START - SECTOR {
        return Err(TargetError::Command {
            command: "grub-mkimage".into(),
            status: "core.img too large".into(),
            stderr: format!("{} bytes do not fit before the partition", core_bytes.len()),
        });
    }
    let boot_path = Path::new(GRUB_MODULES).join("boot.img");
    let boot = tokio::fs::read(&boot_path)
        .await
        .map_err(|e| TargetError::io(&boot_path, e))?;
    let code = boot.get(..MBR_CODE).ok_or_else(|| TargetError::State {
        path: boot_path.clone(),
        message: "shorter than 446 bytes".into(),
    })?;
    write_at(raw, 0, code).await?;
    write_at(raw, SECTOR, &core_bytes).await
}

async fn write_at(path: &Path, offset: u64, bytes: &[u8]) -> Result<(), TargetError> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .await
        .map_err(|e| TargetError::io(path, e))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| TargetError::io(path, e))?;
    file.write_all(bytes)
        .await
        .map_err(|e| TargetError::io(path, e))?;
    file.sync_all().await.map_err(|e| TargetError::io(path, e))
}
