//! The local target's base image: a Debian 12 (bookworm) system built from
//! Debian's archive with mmdebstrap and made into a bootable qcow2 disk
//! (MBR partition table, one ext4 partition labelled `oxbake-root`, GRUB for
//! BIOS boot, serial console). The same file can be imported into Proxmox.
//!
//! Images are cached under `<cache>/base/debian-12-<hash>.qcow2`, where the
//! hash covers everything that shapes the image (package list, mirror, the
//! files written into it, this module's recipe version); a second bootstrap
//! with the same inputs reuses the cached file.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::base_disk;
use super::base_meta::{self, BaseImage};
use super::base_rootfs;
use crate::progress::Progress;
use crate::target::TargetError;

/// Bumped whenever the steps below change the image they produce.
const RECIPE_VERSION: &str = "oxbake-base-debian-12/2";

/// Packages on top of mmdebstrap's `apt` variant. ifupdown + isc-dhcp-client
/// give cloud-init's ENI renderer, which handles network-config v1 and v2.
pub const DEFAULT_PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "initramfs-tools",
    "systemd-sysv",
    "udev",
    "dbus",
    "e2fsprogs",
    "procps",
    "iproute2",
    "ifupdown",
    "isc-dhcp-client",
    "netbase",
    "openssh-server",
    "sudo",
    "ca-certificates",
    "cloud-init",
    "cloud-guest-utils",
    "qemu-guest-agent",
    "locales",
];

/// How to build the base image.
#[derive(Debug, Clone)]
pub struct BootstrapOptions {
    /// oxbake's cache folder (see [`default_cache_dir`]).
    pub cache_dir: PathBuf,
    /// Debian archive URL.
    pub mirror: String,
    pub packages: Vec<String>,
    /// Virtual size of the disk; guests grow into larger overlays themselves.
    pub disk_gib: u32,
    /// Rebuild even when a cached image matches.
    pub refresh: bool,
}

impl BootstrapOptions {
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            cache_dir,
            mirror: "http://deb.debian.org/debian".into(),
            packages: DEFAULT_PACKAGES.iter().map(|p| p.to_string()).collect(),
            disk_gib: 8,
            refresh: false,
        }
    }

    /// The hash of every input that shapes the image.
    pub fn recipe_hash(&self) -> String {
        let mut packages = self.packages.clone();
        packages.sort();
        packages.dedup();
        let mut h = Sha256::new();
        for part in [RECIPE_VERSION, &self.mirror, &self.disk_gib.to_string()] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        let files = base_rootfs::files_digest_input().map(str::to_string);
        for part in packages.into_iter().chain(files) {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }
}

/// `$OXBAKE_CACHE_DIR`, else `$XDG_CACHE_HOME/oxbake`, else `~/.cache/oxbake`.
pub fn default_cache_dir() -> PathBuf {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("OXBAKE_CACHE_DIR") {
        return dir;
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return dir.join("oxbake");
    }
    var("HOME")
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join(".cache/oxbake")
}

/// Builds the base image, or reuses the cached one with the same inputs.
/// Either way it becomes the current base image.
pub async fn bootstrap(
    opts: &BootstrapOptions,
    progress: &Progress,
) -> Result<BaseImage, TargetError> {
    let hash = opts.recipe_hash();
    let dir = base_meta::base_dir(&opts.cache_dir);
    let image = dir.join(format!("debian-12-{}.qcow2", &hash[..16]));
    let _lock = base_meta::lock(&opts.cache_dir).await?;
    if !opts.refresh
        && let Some(found) = base_meta::load(&image).await?
    {
        progress.info(format!("base image `{}` is cached", image.display()));
        base_meta::set_current(&opts.cache_dir, &found.path).await?;
        return Ok(found);
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| TargetError::io(&dir, e))?;
    let work = super::work_dir::WorkDir::new_in(&dir, ".work-")?;
    let built = build(opts, work.path(), &image, progress).await?;
    base_meta::set_current(&opts.cache_dir, &built.path).await?;
    Ok(built)
}

async fn build(
    opts: &BootstrapOptions,
    work: &Path,
    image: &Path,
    progress: &Progress,
) -> Result<BaseImage, TargetError> {
    let rootfs = work.join("rootfs");
    progress.info(format!(
        "mmdebstrap: debian 12 from `{}` (about 2 minutes)",
        opts.mirror
    ));
    base_rootfs::debootstrap(&rootfs, &opts.mirror, &opts.packages).await?;
    base_rootfs::customize(&rootfs).await?;
    progress.info("making the bootable disk");
    let raw = work.join("disk.raw");
    base_disk::make_raw(&rootfs, &raw, opts.disk_gib).await?;
    let partial = work.join("disk.qcow2");
    base_disk::convert_to_qcow2(&raw, &partial).await?;
    base_meta::install(&partial, image, opts.packages.clone(), "bootstrap").await
}
