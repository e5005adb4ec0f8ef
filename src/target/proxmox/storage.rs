//! Volumes on a storage: uploads (`POST /nodes/{node}/storage/{storage}/upload`,
//! multipart: ISO images from memory, `content=import` disk images streamed
//! from a file with a checksum Proxmox verifies), listing, removal and the
//! storage's status (which content types it takes). Uploads are not
//! proxied by Proxmox, so the endpoint must reach the node the volume is
//! for.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::form::{Form, encode_component};
use super::http::Body;
use super::{PveClient, PveError, Upid, upid};

/// The slowest upload rate a request's time is allowed for: an upload may
/// take its size at this rate on top of the request timeout.
const SLOWEST_UPLOAD: u64 = 1024 * 1024;

/// `GET /nodes/{node}/storage/{storage}/status`: what the storage is.
#[derive(Debug, Clone, Deserialize)]
pub struct StorageStatus {
    /// The content types it takes, `,`-separated (`iso,import,vztmpl`).
    #[serde(default)]
    pub content: String,
    /// `dir`, `nfs`, `lvmthin`, …
    #[serde(default, rename = "type")]
    pub kind: String,
}

impl StorageStatus {
    pub fn takes(&self, content: &str) -> bool {
        self.content.split(',').any(|c| c.trim() == content)
    }
}

impl PveClient {
    /// Uploads `bytes` as the ISO `filename`; returns the copy task
    ///  (or `None` if the server did it at once).
    pub async fn upload_iso(
        &self,
        node: &str,
        storage: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Result<Option<Upid>, PveError> {
        let path = format!("/nodes/{node}/storage/{storage}/upload");
        let boundary = boundary_for(&hex::encode(Sha256::digest(bytes)));
        let fields = [("content", "iso")];
        let parts = Parts::new(&boundary, &fields, filename)
            .filter(|_| !contains(bytes, &boundary))
            .ok_or_else(|| no_boundary(&path))?;
        let mut body = parts.head;
        body.extend_from_slice(bytes);
        body.extend_from_slice(&parts.tail);
        let body = Body::Multipart {
            boundary,
            bytes: body,
        };
        upid::answer(
            self.call(reqwest::Method::POST, &path, Form::new(), body)
                .await?,
        )
    }

    /// Uploads the disk image `file` as `content=import` volume `filename`,
    /// streamed from disk, with its `sha256` for Proxmox to verify; returns
    /// the copy task (or `None` if the server did it at once). The request
    /// may take its size at 1 MiB/s on top of the request timeout.
    pub async fn upload_import(
        &self,
        node: &str,
        storage: &str,
        filename: &str,
        file: &Path,
        sha256: &str,
    ) -> Result<Option<Upid>, PveError> {
        let path = format!("/nodes/{node}/storage/{storage}/upload");
        let what = format!("POST {path}");
        let read_error = |e: std::io::Error| PveError::Decode {
            what: what.clone(),
            message: format!("`{}`: {e}", file.display()),
        };
        let size = tokio::fs::metadata(file).await.map_err(read_error)?.len();
        let boundary = boundary_for(sha256);
        let fields = [
            ("content", "import"),
            ("checksum", sha256),
            ("checksum-algorithm", "sha256"),
        ];
        let parts = Parts::new(&boundary, &fields, filename).ok_or_else(|| no_boundary(&path))?;
        if file_contains(file, &boundary).await.map_err(read_error)? {
            return Err(no_boundary(&path));
        }
        let body = Body::File {
            boundary,
            head: parts.head,
            path: file.to_path_buf(),
            size,
            tail: parts.tail,
        };
        let allowed = self.request_timeout() + Duration::from_secs(size / SLOWEST_UPLOAD);
        let client = self.clone().with_request_timeout(allowed);
        upid::answer(
            client
                .call(reqwest::Method::POST, &path, Form::new(), body)
                .await?,
        )
    }

    /// What the storage is and which content types it takes.
    pub async fn storage_status(
        &self,
        node: &str,
        storage: &str,
    ) -> Result<StorageStatus, PveError> {
        let path = format!("/nodes/{node}/storage/{storage}/status");
        self.get(&path, Form::new()).await
    }

    /// The volume ids (`local:iso/x.iso`) of one content type on a storage.
    pub async fn list_volumes(
        &self,
        node: &str,
        storage: &str,
        content: &str,
    ) -> Result<Vec<String>, PveError> {
        #[derive(serde::Deserialize)]
        struct Item {
            volid: String,
        }
        let path = format!("/nodes/{node}/storage/{storage}/content");
        let items: Vec<Item> = self
            .get(&path, Form::new().text("content", content))
            .await?;
        Ok(items.into_iter().map(|i| i.volid).collect())
    }

    /// Removes a volume (`local:iso/x.iso`); returns its task, if any.
    pub async fn delete_volume(
        &self,
        node: &str,
        storage: &str,
        volid: &str,
    ) -> Result<Option<Upid>, PveError> {
        let path = format!(
            "/nodes/{node}/storage/{storage}/content/{}",
            encode_component(volid)
        );
        upid::answer(self.delete(&path, Form::new()).await?)
    }
}

/// The boundary of a file whose sha256 is `hash` (hex): `oxbake-` and half
/// the hash. Whoever sends it checks it is absent from the file.
fn boundary_for(hash: &str) -> String {
    format!("oxbake-{}", &hash[..hash.len().min(32)])
}

fn no_boundary(path: &str) -> PveError {
    PveError::Decode {
        what: format!("POST {path}"),
        message: "could not find a multipart boundary absent from the file".into(),
    }
}

/// A `multipart/form-data` body around one file: the text `fields` and the
/// file part's header (`head`), then the file's bytes, then `tail`.
struct Parts {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Parts {
    /// `None` for a file name or field that would break the body.
    fn new(boundary: &str, fields: &[(&str, &str)], filename: &str) -> Option<Self> {
        let marker = format!("--{boundary}");
        let unsafe_text = |t: &str| t.contains(['"', '\r', '\n']) || t.contains(&marker);
        if unsafe_text(filename) || fields.iter().any(|(k, v)| unsafe_text(k) || unsafe_text(v)) {
            return None;
        }
        let mut head = String::new();
        for (name, value) in fields {
            head.push_str(&format!(
                "{marker}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        head.push_str(&format!(
            "{marker}\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        ));
        Some(Self {
            head: head.into_bytes(),
            tail: format!("\r\n{marker}--\r\n").into_bytes(),
        })
    }
}

/// Whether `bytes` hold `--boundary`.
fn contains(bytes: &[u8], boundary: &str) -> bool {
    let marker = format!("--{boundary}");
    bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
}

/// [`contains`] over a file, read in chunks (a match may span two).
async fn file_contains(file: &Path, boundary: &str) -> std::io::Result<bool> {
    let marker = format!("--{boundary}").into_bytes();
    let mut f = tokio::fs::File::open(file).await?;
    let mut buf = vec![0u8; 1 << 20];
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            return Ok(false);
        }
        carry.extend_from_slice(&buf[..n]);
        if carry.windows(marker.len()).any(|w| w == marker.as_slice()) {
            return Ok(true);
        }
        let keep = carry.len().min(marker.len() - 1);
        carry.drain(..carry.len() - keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_body_has_every_part() {
        let boundary = boundary_for(&"ab".repeat(32));
        assert_eq!(boundary, format!("oxbake-{}", "ab".repeat(16)));
        let fields = [("content", "import"), ("checksum", "00ff")];
        let parts = Parts::new(&boundary, &fields, "x.qcow2").unwrap();
        let mut body = parts.head;
        body.extend_from_slice(b"QFI\r\nBYTES");
        body.extend_from_slice(&parts.tail);
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"content\"\r\n\r\nimport\r\n"));
        assert!(text.contains("name=\"checksum\"\r\n\r\n00ff\r\n"));
        assert!(text.contains(
            "filename=\"x.qcow2\"\r\nContent-Type: application/octet-stream\r\n\r\nQFI\r\nBYTES\r\n"
        ));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert!(Parts::new(&boundary, &fields, "a\"b.iso").is_none());
    }

    #[tokio::test]
    async fn a_boundary_is_found_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        // The marker straddles the first 1 MiB chunk's end.
        let mut bytes = vec![0u8; (1 << 20) - 5];
        bytes.extend_from_slice(b"--oxbake-x");
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        assert!(file_contains(&path, "oxbake-x").await.unwrap());
        assert!(!file_contains(&path, "oxbake-y").await.unwrap());
        assert!(contains(&bytes, "oxbake-x") && !contains(b"--oxbake", "oxbake-x"));
    }
}
