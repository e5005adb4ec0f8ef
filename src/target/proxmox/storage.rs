//! ISO images on a storage: upload (`POST /nodes/{node}/storage/{storage}/upload`,
//! multipart, `content=iso`) and removal. Uploads are not proxied by
//! Proxmox, so the endpoint must reach the node the ISO is for.

use sha2::{Digest, Sha256};

use super::form::{Form, encode_component};
use super::http::Body;
use super::{PveClient, PveError, Upid, upid};

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
        let (boundary, body) = multipart(filename, bytes).ok_or_else(|| PveError::Decode {
            what: format!("POST {path}"),
            message: "could not find a multipart boundary absent from the file".into(),
        })?;
        let body = Body::Multipart {
            boundary,
            bytes: body,
        };
        upid::answer(
            self.call(reqwest::Method::POST, &path, Form::new(), body)
                .await?,
        )
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

/// A `multipart/form-data` body with `content=iso` and the file part
/// `filename`. The boundary is derived from the file's hash and checked to
/// be absent from it.
fn multipart(filename: &str, bytes: &[u8]) -> Option<(String, Vec<u8>)> {
    let hash = hex::encode(Sha256::digest(bytes));
    let boundary = format!("oxbake-{}", &hash[..32]);
    let marker = format!("--{boundary}");
    if bytes.windows(marker.len()).any(|w| w == marker.as_bytes())
        || filename.contains(['"', '\r', '\n'])
    {
        return None;
    }
    let mut body = Vec::with_capacity(bytes.len() + 512);
    body.extend_from_slice(
        format!(
            "{marker}\r\nContent-Disposition: form-data; name=\"content\"\r\n\r\niso\r\n\
             {marker}\r\nContent-Disposition: form-data; name=\"filename\"; filename=\"{filename}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n{marker}--\r\n").as_bytes());
    Some((boundary, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_body_has_both_parts() {
        let (boundary, body) = multipart("seed.iso", b"ISO\r\nBYTES").unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"content\"\r\n\r\niso\r\n"));
        assert!(text.contains("filename=\"seed.iso\"\r\nContent-Type: application/octet-stream\r\n\r\nISO\r\nBYTES\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert!(multipart("a\"b.iso", b"x").is_none());
    }
}
