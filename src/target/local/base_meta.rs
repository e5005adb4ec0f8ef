//! Base image files in the cache and the small TOML beside each one
//! (suite, sha256, package list, origin). Each suite has a symbolic link to
//! the image that `Source::Base(suite)` uses: `base/current.qcow2` for
//! bookworm (the name it had before suites), `base/current-SUITE.qcow2` for
//! the others. Overlays always record the resolved file, so re-pointing a
//! link never breaks an existing backing chain.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::files::Chunks;
use super::state::STATE_FILE;
use crate::suite::Suite;
use crate::target::TargetError;

/// A base image file in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    pub path: PathBuf,
    /// The Debian release it is (bootstrapped as, or said to be at import).
    pub suite: Suite,
    pub sha256: String,
    /// Packages it was bootstrapped with (empty for an imported image).
    pub packages: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    /// Missing in metadata written before suites: those are bookworm.
    #[serde(default)]
    suite: Suite,
    sha256: String,
    origin: String,
    created: String,
    packages: Vec<String>,
}

/// What an installed image is: its suite, packages and where it came from.
#[derive(Debug, Clone)]
pub struct Made {
    pub suite: Suite,
    /// Packages it was bootstrapped with (empty for an imported image).
    pub packages: Vec<String>,
    /// `bootstrap`, or the file or URL it was imported from.
    pub origin: String,
}

/// The name of the link to the current image of `suite`.
pub fn current_link(suite: Suite) -> String {
    match suite {
        Suite::Bookworm => "current.qcow2".to_owned(),
        other => format!("current-{other}.qcow2"),
    }
}

pub fn base_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("base")
}

fn meta_path(image: &Path) -> PathBuf {
    image.with_extension("toml")
}

/// The image at `image` if it and its metadata exist.
pub async fn load(image: &Path) -> Result<Option<BaseImage>, TargetError> {
    let meta_file = meta_path(image);
    let text = match tokio::fs::read_to_string(&meta_file).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(TargetError::io(&meta_file, e)),
    };
    if !tokio::fs::try_exists(image)
        .await
        .map_err(|e| TargetError::io(image, e))?
    {
        return Ok(None);
    }
    let meta: Meta = toml::from_str(&text).map_err(|e| TargetError::State {
        path: meta_file.clone(),
        message: e.to_string(),
    })?;
    Ok(Some(BaseImage {
        path: image.to_path_buf(),
        suite: meta.suite,
        sha256: meta.sha256,
        packages: meta.packages,
    }))
}

/// The current base image of `suite` (see the module documentation), if any.
pub async fn current(cache_dir: &Path, suite: Suite) -> Result<Option<BaseImage>, TargetError> {
    let link = base_dir(cache_dir).join(current_link(suite));
    match tokio::fs::canonicalize(&link).await {
        Ok(target) => load(&target).await,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TargetError::io(&link, e)),
    }
}

/// Points the link of `suite` at `image` (atomically: link, then rename).
pub async fn set_current(cache_dir: &Path, suite: Suite, image: &Path) -> Result<(), TargetError> {
    let dir = base_dir(cache_dir);
    let tmp = dir.join(format!(".current-{}", std::process::id()));
    let _ = tokio::fs::remove_file(&tmp).await;
    let name = image
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| image.to_path_buf());
    tokio::fs::symlink(&name, &tmp)
        .await
        .map_err(|e| TargetError::io(&tmp, e))?;
    let link = dir.join(current_link(suite));
    tokio::fs::rename(&tmp, &link)
        .await
        .map_err(|e| TargetError::io(&link, e))
}

/// Moves a finished `partial` image to `image` (read-only) and records its
/// metadata.
pub async fn install(partial: &Path, image: &Path, made: Made) -> Result<BaseImage, TargetError> {
    let sha256 = sha256_file(partial).await?;
    tokio::fs::set_permissions(partial, std::fs::Permissions::from_mode(0o444))
        .await
        .map_err(|e| TargetError::io(partial, e))?;
    let meta = Meta {
        suite: made.suite,
        sha256: sha256.clone(),
        origin: made.origin,
        created: jiff::Timestamp::now().to_string(),
        packages: made.packages.clone(),
    };
    let text = toml::to_string(&meta).map_err(|e| TargetError::State {
        path: meta_path(image),
        message: e.to_string(),
    })?;
    tokio::fs::rename(partial, image)
        .await
        .map_err(|e| TargetError::io(image, e))?;
    let meta_file = meta_path(image);
    STATE_FILE
        .write_async(meta_file.clone(), text.into_bytes())
        .await
        .map_err(|e| TargetError::io(&meta_file, e.source))?;
    Ok(BaseImage {
        path: image.to_path_buf(),
        suite: made.suite,
        sha256,
        packages: made.packages,
    })
}

/// The hex SHA-256 of a file's contents.
pub async fn sha256_file(path: &Path) -> Result<String, TargetError> {
    let mut hasher = Sha256::new();
    let mut chunks = Chunks::open(path).await?;
    while let Some(chunk) = chunks.next().await? {
        hasher.update(chunk);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Holds `base/.lock` exclusively until dropped: one bootstrap or import at
/// a time. Whoever holds it also removes work folders that an interrupted
/// run left behind (`.work-*`, `.import-*`).
pub async fn lock(cache_dir: &Path) -> Result<std::fs::File, TargetError> {
    let dir = base_dir(cache_dir);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| TargetError::io(&dir, e))?;
    let path = dir.join(".lock");
    let locked = tokio::task::spawn_blocking({
        let path = path.clone();
        move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        }
    })
    .await
    .map_err(|e| TargetError::io(&path, std::io::Error::other(e)))?
    .map_err(|e| TargetError::io(&path, e))?;
    remove_stale_work(&dir).await?;
    Ok(locked)
}

async fn remove_stale_work(dir: &Path) -> Result<(), TargetError> {
    let mut entries = tokio::fs::read_dir(dir)
        .await
        .map_err(|e| TargetError::io(dir, e))?;
    while let Some(entry) = entries
        .next_entry()
        .await
        .map_err(|e| TargetError::io(dir, e))?
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".work-") || name.starts_with(".import-") {
            let path = entry.path();
            tokio::task::spawn_blocking(move || super::work_dir::remove(&path))
                .await
                .map_err(|e| TargetError::io(dir, std::io::Error::other(e)))??;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metadata_written_before_suites_is_bookworm() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("debian-12-0123456789abcdef.qcow2");
        std::fs::write(&image, b"qcow2").unwrap();
        let old = "sha256 = \"ab\"\norigin = \"bootstrap\"\ncreated = \"2026-01-01T00:00:00Z\"\npackages = []\n";
        std::fs::write(meta_path(&image), old).unwrap();
        let found = load(&image).await.unwrap().unwrap();
        assert_eq!(found.suite, Suite::Bookworm);
        assert_eq!(current_link(Suite::Bookworm), "current.qcow2");
        assert_eq!(current_link(Suite::Trixie), "current-trixie.qcow2");
    }
}
