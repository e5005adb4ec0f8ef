//! The response envelope: `{"data": …}` on success; on failure the body's
//! `message` (pve-http-server 5.2+) or else the HTTP reason phrase (where
//! Proxmox has always put its message), plus the per-parameter `errors`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::http::transport_error;
use super::{PveError, error};

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Option<Value>,
}

pub(super) async fn decode<T: DeserializeOwned>(
    what: String,
    resp: reqwest::Response,
) -> Result<T, PveError> {
    let status = resp.status();
    if status.is_redirection() {
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|l| String::from_utf8_lossy(l.as_bytes()).into_owned())
            .unwrap_or_default();
        return Err(PveError::Redirected {
            what,
            status: status.as_u16(),
            location,
        });
    }
    let reason = reason_phrase(&resp);
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| transport_error(what.clone(), &e))?;
    if status.is_success() {
        #[derive(Deserialize)]
        struct Envelope<T> {
            data: T,
        }
        return serde_json::from_slice::<Envelope<T>>(&bytes)
            .map(|env| env.data)
            .map_err(|e| PveError::Decode {
                what,
                message: e.to_string(),
            });
    }
    let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
    let message = body
        .as_ref()
        .and_then(|b| b.message.clone())
        .filter(|m| !m.trim().is_empty())
        .unwrap_or(reason);
    let errors = body
        .and_then(|b| b.errors)
        .map(error_map)
        .unwrap_or_default();
    Err(error::classify(
        what,
        status.as_u16(),
        message.trim().to_string(),
        errors,
    ))
}

/// The reason phrase as sent (Proxmox puts its message there), else the
/// standard one.
fn reason_phrase(resp: &reqwest::Response) -> String {
    resp.extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned())
        .or_else(|| resp.status().canonical_reason().map(str::to_string))
        .unwrap_or_default()
}

fn error_map(v: Value) -> BTreeMap<String, String> {
    match v {
        Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| {
                let text = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                (k, text.trim().to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}
