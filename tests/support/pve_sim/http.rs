//! Requests and replies as the simulator sees them, decoded the way
//! pve-http-server does: form bodies split on `&` and `;`, each pair on `=`
//! (a raw `=` in a value truncates it), `+` read as a space.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// A decoded request.
#[derive(Debug, Default)]
pub struct Req {
    pub method: String,
    /// Path segments after `/api2/json`, each percent-decoded.
    pub segments: Vec<String>,
    /// Query and body parameters.
    pub params: BTreeMap<String, String>,
    /// The file part of a multipart upload: (filename, bytes).
    pub file: Option<(String, Vec<u8>)>,
}

/// A reply: status, body and reason phrase (Proxmox puts its message there).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub reason: Option<String>,
}

pub fn ok(data: Value) -> Reply {
    Reply {
        status: 200,
        body: json!({ "data": data }),
        reason: None,
    }
}

/// An error as pve-http-server 5.2+ sends it (`legacy` drops `message`).
pub fn error(status: u16, message: &str, legacy: bool) -> Reply {
    let body = if legacy {
        json!({ "data": null })
    } else {
        json!({ "data": null, "message": format!("{message}\n") })
    };
    Reply {
        status,
        body,
        reason: Some(message.to_string()),
    }
}

pub fn param_errors(errors: BTreeMap<String, String>, legacy: bool) -> Reply {
    let mut reply = error(400, "Parameter verification failed.", legacy);
    let map: serde_json::Map<String, Value> = errors
        .into_iter()
        .map(|(k, v)| (k, Value::from(format!("{v}\n"))))
        .collect();
    reply.body["errors"] = Value::Object(map);
    reply
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Proxmox's `decode_urlencoded`.
pub fn decode_form(text: &str, into: &mut BTreeMap<String, String>) {
    for pair in text.split(['&', ';']).filter(|p| !p.is_empty()) {
        let mut parts = pair.split('=');
        let key = parts.next().unwrap_or_default();
        let value = parts.next().unwrap_or_default();
        let decode = |s: &str| percent_decode(&s.replace('+', " "));
        into.insert(decode(key), decode(value));
    }
}

/// A minimal multipart/form-data reader: text fields into `params`, the
/// part with a `filename` into `file`.
pub fn decode_multipart(content_type: &str, body: &[u8], req: &mut Req) -> Result<(), String> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .ok_or("multipart without boundary")?
        .trim_matches('"');
    let marker = format!("--{boundary}");
    let mut rest = body;
    loop {
        let start = find(rest, marker.as_bytes()).ok_or("missing boundary")? + marker.len();
        rest = &rest[start..];
        if rest.starts_with(b"--") {
            return Ok(());
        }
        rest = rest.strip_prefix(b"\r\n").ok_or("bad part start")?;
        let head_end = find(rest, b"\r\n\r\n").ok_or("bad part head")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let content = &rest[head_end + 4..];
        let end = find(content, format!("\r\n{marker}").as_bytes()).ok_or("unterminated part")?;
        let value = &content[..end];
        let name = header_param(&head, "name").ok_or("part without name")?;
        match header_param(&head, "filename") {
            Some(file) => {
                // Proxmox takes the file part's name as the parameter.
                req.params.insert(name, file.clone());
                req.file = Some((file, value.to_vec()));
            }
            None => {
                req.params
                    .insert(name, String::from_utf8_lossy(value).into_owned());
            }
        }
        rest = &content[end + 2..];
    }
}

fn header_param(head: &str, key: &str) -> Option<String> {
    let needle = format!(" {key}=\"");
    let start = head.find(&needle)? + needle.len();
    let end = head[start..].find('"')? + start;
    Some(head[start..end].to_string())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
