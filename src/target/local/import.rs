//! `oxbake base import FILE|URL --sha256 HEX`: takes a ready-made image (a
//! Debian cloud image) as the base. The bytes are hashed while they are
//! copied or downloaded into a temporary file in the cache; a checksum
//! mismatch removes it and keeps nothing. Raw images are converted to qcow2.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::base_meta::{self, BaseImage};
use super::files::Chunks;
use super::lifecycle::virtual_size;
use crate::progress::{Event, Progress};
use crate::target::{TargetError, exec};

/// Copies or downloads `source` into the cache, checks it against `sha256`
/// and makes it the current base image.
pub async fn import(
    source: &str,
    sha256: &str,
    cache_dir: &Path,
    progress: &Progress,
) -> Result<BaseImage, TargetError> {
    let expected = sha256.trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TargetError::InvalidSha256(sha256.to_string()));
    }
    let dir = base_meta::base_dir(cache_dir);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| TargetError::io(&dir, e))?;
    let image = dir.join(format!("imported-{}.qcow2", &expected[..16]));
    let _lock = base_meta::lock(cache_dir).await?;
    if let Some(found) = base_meta::load(&image).await? {
        progress.info(format!(
            "base image `{}` is already imported",
            image.display()
        ));
        base_meta::set_current(cache_dir, &found.path).await?;
        return Ok(found);
    }
    let work = tempfile::Builder::new()
        .prefix(".import-")
        .tempdir_in(&dir)
        .map_err(|e| TargetError::io(&dir, e))?;
    let fetched = work.path().join("fetched");
    let actual = fetch(source, &fetched, progress).await?;
    if actual != expected {
        return Err(TargetError::ChecksumMismatch {
            origin: source.to_string(),
            expected,
            actual,
        });
    }
    let qcow2 = as_qcow2(&fetched, work.path()).await?;
    let found = base_meta::install(&qcow2, &image, Vec::new(), source).await?;
    base_meta::set_current(cache_dir, &found.path).await?;
    Ok(found)
}

/// Writes `source` to `dest` and returns the hex SHA-256 of its bytes.
async fn fetch(source: &str, dest: &Path, progress: &Progress) -> Result<String, TargetError> {
    let mut sink = Sink::create(dest, source, progress).await?;
    if source.starts_with("http://") || source.starts_with("https://") {
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
    while let Some(chunk) = response.chunk().await.map_err(err)? {
        sink.write(&chunk).await?;
    }
    Ok(())
}

async fn copy_file(path: &Path, sink: &mut Sink<'_>) -> Result<(), TargetError> {
    let mut chunks = Chunks::open(path).await?;
    sink.total = chunks.size().await;
    while let Some(chunk) = chunks.next().await? {
        sink.write(chunk).await?;
    }
    Ok(())
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
    progress: &'a Progress,
}

impl<'a> Sink<'a> {
    async fn create(path: &Path, what: &str, progress: &'a Progress) -> Result<Self, TargetError> {
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
            progress,
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), TargetError> {
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
