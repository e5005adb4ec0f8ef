//! `oxbake base import FILE|URL --sha256 HEX`: takes a ready-made image (a
//! Debian cloud image) as the base. The bytes are hashed while they are
//! copied or downloaded into a temporary file in the cache; a checksum
//! mismatch removes it and keeps nothing. Raw images are converted to qcow2.
//!
//! A file source must be a regular file (a FIFO, a device, a socket or a
//! folder is refused before it is opened: exit 2), and no source may be
//! longer than the limit (default 64 GiB, `--max-size`): a file or a
//! `Content-Length` over it is refused before a byte is read, a body or a
//! file that keeps going past it is cut there and refused, keeping nothing.

use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::base_meta::{self, BaseImage};
use super::lifecycle::virtual_size;
use crate::progress::{Event, Progress};
use crate::suite::Suite;
use crate::target::{TargetError, exec};

/// The default of `--max-size`: 64 GiB.
pub const DEFAULT_LIMIT: u64 = 64 << 30;

/// Why a source is refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("`{}` is {kind}, not a regular file: only an image file or a URL can be imported", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("`{origin}` is longer than the import limit of {limit} bytes (--max-size)")]
    TooLarge { origin: String, limit: u64 },
}

impl ImportError {
    /// Whether the command line named something that can never be imported
    /// (exit 2) rather than a source that turned out too long (exit 1).
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Self::NotAFile { .. })
    }
}

/// Copies or downloads `source` (at most `limit` bytes) into the cache,
/// checks it against `sha256` and makes it the current base image of
/// `suite` (what the operator says it is: nothing in the image is read).
pub async fn import(
    source: &str,
    sha256: &str,
    suite: Suite,
    cache_dir: &Path,
    limit: u64,
    progress: &Progress,
) -> Result<BaseImage, TargetError> {
    let expected = sha256.trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TargetError::InvalidSha256(sha256.to_string()));
    }
    if !is_url(source) {
        // Refused before anything is made or opened (opening a FIFO waits).
        let meta = std::fs::metadata(source).map_err(|e| TargetError::io(Path::new(source), e))?;
        regular_file(Path::new(source), &meta, limit)?;
    }
    let dir = base_meta::base_dir(cache_dir);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| TargetError::io(&dir, e))?;
    let image = dir.join(format!("{}.qcow2", imported_stem(suite, &expected)));
    let _lock = base_meta::lock(cache_dir).await?;
    if let Some(found) = base_meta::load(&image).await? {
        progress.info(format!(
            "base image `{}` is already imported",
            image.display()
        ));
        base_meta::set_current(cache_dir, suite, &found.path).await?;
        return Ok(found);
    }
    let work = super::work_dir::WorkDir::new_in(&dir, ".import-")?;
    let fetched = work.path().join("fetched");
    let actual = fetch(source, &fetched, limit, progress).await?;
    if actual != expected {
        return Err(TargetError::ChecksumMismatch {
            origin: source.to_string(),
            expected,
            actual,
        });
    }
    let qcow2 = as_qcow2(&fetched, work.path()).await?;
    let made = base_meta::Made {
        suite,
        packages: Vec::new(),
        origin: source.to_owned(),
    };
    let found = base_meta::install(&qcow2, &image, made).await?;
    base_meta::set_current(cache_dir, suite, &found.path).await?;
    Ok(found)
}

/// `imported-<sha256 prefix>` for bookworm (its name before suites),
/// `imported-SUITE-<sha256 prefix>` for the others: one file imported as
/// two suites is two bases, never one shared identity.
pub fn imported_stem(suite: Suite, sha256: &str) -> String {
    let prefix = &sha256[..16];
    match suite {
        Suite::Bookworm => format!("imported-{prefix}"),
        other => format!("imported-{other}-{prefix}"),
    }
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Refuses what is not a regular file of at most `limit` bytes.
fn regular_file(path: &Path, meta: &std::fs::Metadata, limit: u64) -> Result<(), ImportError> {
    let kind = meta.file_type();
    let not = |kind| ImportError::NotAFile {
        path: path.to_path_buf(),
        kind,
    };
    if kind.is_fifo() {
        return Err(not("a FIFO (named pipe)"));
    }
    if kind.is_char_device() {
        return Err(not("a character device"));
    }
    if kind.is_block_device() {
        return Err(not("a block device"));
    }
    if kind.is_socket() {
        return Err(not("a socket"));
    }
    if kind.is_dir() {
        return Err(not("a folder"));
    }
    if !kind.is_file() {
        return Err(not("not a regular file"));
    }
    if meta.len() > limit {
        return Err(ImportError::TooLarge {
            origin: path.display().to_string(),
            limit,
        });
    }
    Ok(())
}

/// Writes `source` to `dest` and returns the hex SHA-256 of its bytes.
async fn fetch(
    source: &str,
    dest: &Path,
    limit: u64,
    progress: &Progress,
) -> Result<String, TargetError> {
    let mut sink = Sink::create(dest, source, limit, progress).await?;
    if is_url(source) {
        download(source, &mut sink).await?;
    } else {
        copy_file(Path::new(source), &mut sink).await?;
    }
    sink.finish().await
}

async fn download(url: &str, sink: &mut Sink<'_>) -> Result<(), TargetError> {
    let err = |e: reqwest::Error| TargetError::Download {
        url: url.to_string(),
        message: e.to_string(),
    };
    let mut response = reqwest::get(url)
        .await
        .map_err(err)?
        .error_for_status()
        .map_err(err)?;
    sink.total = response.content_length();
    if sink.total.is_some_and(|n| n > sink.limit) {
        return Err(sink.too_large());
    }
    while let Some(chunk) = response.chunk().await.map_err(err)? {
        sink.write(&chunk).await?;
    }
    Ok(())
}

async fn copy_file(path: &Path, sink: &mut Sink<'_>) -> Result<(), TargetError> {
    let io = |e| TargetError::io(path, e);
    // Non-blocking: should the path have become a FIFO since it was looked
    // at, the open does not wait for a writer, and the check below refuses.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    regular_file(path, &meta, sink.limit)?;
    sink.total = Some(meta.len());
    let mut file = tokio::fs::File::from_std(file);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            return Ok(());
        }
        sink.write(&buf[..n]).await?;
    }
}

/// The destination file, its running hash and the transfer progress.
struct Sink<'a> {
    file: tokio::fs::File,
    path: PathBuf,
    hasher: Sha256,
    what: String,
    done: u64,
    reported: u64,
    total: Option<u64>,
    /// No more bytes than this are taken.
    limit: u64,
    progress: &'a Progress,
}

impl<'a> Sink<'a> {
    async fn create(
        path: &Path,
        what: &str,
        limit: u64,
        progress: &'a Progress,
    ) -> Result<Self, TargetError> {
        let file = tokio::fs::File::create(path)
            .await
            .map_err(|e| TargetError::io(path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            hasher: Sha256::new(),
            what: what.to_string(),
            done: 0,
            reported: 0,
            total: None,
            limit,
            progress,
        })
    }

    fn too_large(&self) -> TargetError {
        ImportError::TooLarge {
            origin: self.what.clone(),
            limit: self.limit,
        }
        .into()
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), TargetError> {
        if self.done + bytes.len() as u64 > self.limit {
            return Err(self.too_large());
        }
        self.file
            .write_all(bytes)
            .await
            .map_err(|e| TargetError::io(&self.path, e))?;
        self.hasher.update(bytes);
        self.done += bytes.len() as u64;
        if self.done - self.reported >= 4 << 20 {
            self.report();
        }
        Ok(())
    }

    fn report(&mut self) {
        self.reported = self.done;
        let (what, done, total) = (self.what.clone(), self.done, self.total);
        self.progress.send(Event::Transfer { what, done, total });
    }

    async fn finish(mut self) -> Result<String, TargetError> {
        self.file
            .sync_all()
            .await
            .map_err(|e| TargetError::io(&self.path, e))?;
        self.report();
        Ok(hex::encode(self.hasher.finalize()))
    }
}

/// The image as qcow2: itself if it already is, else a converted copy.
async fn as_qcow2(fetched: &Path, work: &Path) -> Result<PathBuf, TargetError> {
    let mut cmd = tokio::process::Command::new("qemu-img");
    cmd.args(["info", "--output=json"]).arg(fetched);
    let out = exec::run(&mut cmd).await?;
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if info["format"] == "qcow2" {
        if info.get("backing-filename").is_some() {
            return Err(TargetError::State {
                path: fetched.to_path_buf(),
                message: "a base image cannot have a backing file".into(),
            });
        }
        virtual_size(fetched).await?;
        return Ok(fetched.to_path_buf());
    }
    let converted = work.join("converted.qcow2");
    let mut cmd = tokio::process::Command::new("qemu-img");
    cmd.args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(fetched)
        .arg(&converted);
    exec::run(&mut cmd).await?;
    Ok(converted)
}

#[cfg(test)]
mod tests;
