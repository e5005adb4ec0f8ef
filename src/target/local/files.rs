//! Small file-system helpers of the local target: listing a folder, and
//! reading a file in chunks.

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

use crate::target::TargetError;

/// How much of a file one read hands over.
const CHUNK: usize = 1 << 20;

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
}

/// The entries of `dir`, in no particular order; none if `dir` is missing.
pub async fn entries(dir: &Path) -> Result<Vec<Entry>, TargetError> {
    let mut out = Vec::new();
    let mut read = match tokio::fs::read_dir(dir).await {
        Ok(read) => read,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(TargetError::io(dir, e)),
    };
    while let Some(entry) = read
        .next_entry()
        .await
        .map_err(|e| TargetError::io(dir, e))?
    {
        out.push(Entry {
            name: entry.file_name().to_string_lossy().into_owned(),
            is_dir: entry.file_type().await.is_ok_and(|t| t.is_dir()),
        });
    }
    Ok(out)
}

/// A file read from start to end in chunks.
pub struct Chunks {
    file: tokio::fs::File,
    path: PathBuf,
    buf: Vec<u8>,
}

impl Chunks {
    pub async fn open(path: &Path) -> Result<Self, TargetError> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| TargetError::io(path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            buf: vec![0u8; CHUNK],
        })
    }

    /// The file's size, if known.
    #[cfg(test)]
    pub async fn size(&self) -> Option<u64> {
        self.file.metadata().await.ok().map(|m| m.len())
    }

    /// The next chunk; `None` at the end of the file.
    pub async fn next(&mut self) -> Result<Option<&[u8]>, TargetError> {
        let n = self
            .file
            .read(&mut self.buf)
            .await
            .map_err(|e| TargetError::io(&self.path, e))?;
        Ok((n > 0).then(|| &self.buf[..n]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_say_which_are_folders_and_a_missing_folder_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("a.toml"), "").unwrap();
        let mut found = entries(dir.path()).await.unwrap();
        found.sort_by(|a, b| a.name.cmp(&b.name));
        let expected = [("a.toml", false), ("sub", true)].map(|(name, is_dir)| Entry {
            name: name.into(),
            is_dir,
        });
        assert_eq!(found, expected);
        assert_eq!(entries(&dir.path().join("none")).await.unwrap(), []);
    }

    #[tokio::test]
    async fn chunks_cover_the_whole_file_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..CHUNK * 2 + 7).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut chunks = Chunks::open(&path).await.unwrap();
        assert_eq!(chunks.size().await, Some(data.len() as u64));
        let mut seen = Vec::new();
        while let Some(chunk) = chunks.next().await.unwrap() {
            seen.extend_from_slice(chunk);
        }
        assert_eq!(seen, data);
        let Err(err) = Chunks::open(&dir.path().join("none")).await else {
            panic!("opened a missing file")
        };
        assert!(err.to_string().contains("none"), "{err}");
    }
}
