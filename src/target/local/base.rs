//! The local target's base images: a Debian system of one suite (bookworm,
//! the default, or trixie) built from Debian's archive with mmdebstrap and
//! made into a bootable qcow2 disk (MBR partition table, one ext4 partition
//! labelled `oxbake-root`, GRUB for BIOS boot, serial console). The same
//! file can be imported into Proxmox.
//!
//! Images are cached under `<cache>/base/debian-<version>-<hash>.qcow2`
//! (`debian-12-…` for bookworm, `debian-13-…` for trixie), where the hash
//! covers everything that shapes the image (suite, package list, mirror, the
//! files written into it, this module's recipe version); a second bootstrap
//! with the same inputs reuses the cached file, and the bases of several
//! suites live side by side.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::base_disk;
use super::base_meta::{self, BaseImage};
use super::base_rootfs;
use crate::progress::Progress;
use crate::suite::Suite;
use crate::target::TargetError;

/// Bumped whenever the steps below change the image they produce; the
/// release's version is part of it, so each suite hashes apart.
fn recipe_version(suite: Suite) -> String {
    format!("oxbake-base-debian-{}/2", suite.version())
}

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
    /// The Debian release to build.
    pub suite: Suite,
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
    pub fn new(cache_dir: PathBuf, suite: Suite) -> Self {
        Self {
            suite,
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
        let head = [
            recipe_version(self.suite),
            self.mirror.clone(),
            self.disk_gib.to_string(),
        ];
        let files = base_rootfs::files_digest_input(self.suite);
        for part in head.into_iter().chain(packages).chain(files) {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }

    /// The file the image with these inputs is cached as.
    pub fn image_path(&self) -> PathBuf {
        base_meta::base_dir(&self.cache_dir).join(format!("{}.qcow2", self.image_stem()))
    }

    /// `debian-<version>-<first 16 digits of the recipe hash>`.
    pub fn image_stem(&self) -> String {
        let hash = self.recipe_hash();
        format!("debian-{}-{}", self.suite.version(), &hash[..16])
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
    let dir = base_meta::base_dir(&opts.cache_dir);
    let image = opts.image_path();
    let _lock = base_meta::lock(&opts.cache_dir).await?;
    if !opts.refresh
        && let Some(found) = base_meta::load(&image).await?
    {
        progress.info(format!("base image `{}` is cached", image.display()));
        base_meta::set_current(&opts.cache_dir, opts.suite, &found.path).await?;
        return Ok(found);
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| TargetError::io(&dir, e))?;
    let work = super::work_dir::WorkDir::new_in(&dir, ".work-")?;
    let built = build(opts, work.path(), &image, progress).await?;
    base_meta::set_current(&opts.cache_dir, opts.suite, &built.path).await?;
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
        "mmdebstrap: debian {} ({}) from `{}` (about 2 minutes)",
        opts.suite.version(),
        opts.suite,
        opts.mirror
    ));
    base_rootfs::debootstrap(opts.suite, &rootfs, &opts.mirror, &opts.packages).await?;
    base_rootfs::customize(opts.suite, &rootfs).await?;
    progress.info("making the bootable disk");
    let raw = work.join("disk.raw");
    base_disk::make_raw(&rootfs, &raw, opts.disk_gib).await?;
    let partial = work.join("disk.qcow2");
    base_disk::convert_to_qcow2(&raw, &partial).await?;
    let made = base_meta::Made {
        suite: opts.suite,
        packages: opts.packages.clone(),
        origin: "bootstrap".into(),
    };
    base_meta::install(&partial, image, made).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash as oxbake computed it before suites (bookworm only), from
    /// its constants as they were: bookworm's cached images and every root
    /// role's inputs hash stay valid.
    fn hash_before_suites(opts: &BootstrapOptions) -> String {
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
        let mut packages = opts.packages.clone();
        packages.sort();
        let mut h = Sha256::new();
        let disk = opts.disk_gib.to_string();
        let head = ["oxbake-base-debian-12/2", &opts.mirror, &disk];
        let [fstab, _, cloud] = base_rootfs::files_digest_input(Suite::Bookworm);
        let files = [fstab, GRUB_CFG.to_owned(), cloud];
        for part in head.into_iter().chain(packages.iter().map(String::as_str)) {
            h.update(part.as_bytes());
            h.update([0]);
        }
        for part in &files {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }

    #[test]
    fn bookworm_keeps_its_hash_and_file_name_and_trixie_gets_its_own() {
        let cache = PathBuf::from("/c");
        let bookworm = BootstrapOptions::new(cache.clone(), Suite::Bookworm);
        let trixie = BootstrapOptions::new(cache, Suite::Trixie);
        let before = hash_before_suites(&bookworm);
        assert_eq!(bookworm.recipe_hash(), before);
        assert_eq!(
            bookworm.image_path(),
            PathBuf::from(format!("/c/base/debian-12-{}.qcow2", &before[..16]))
        );
        assert_ne!(trixie.recipe_hash(), before);
        let stem = trixie.image_stem();
        assert!(stem.starts_with("debian-13-"), "{stem}");
        assert_eq!(
            trixie.image_path(),
            PathBuf::from(format!("/c/base/{stem}.qcow2"))
        );
    }
}
