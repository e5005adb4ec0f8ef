//! Request parameters, encoded the way Proxmox's form decoder needs them.
//!
//! Proxmox splits a form body on `&` and `;`, splits pairs on every `=`, and
//! reads `+` as a space, so every byte outside `A-Z a-z 0-9 - _ . ~` is
//! percent-encoded. Booleans are exactly `1`/`0`.

use std::fmt::Write;

/// An ordered list of parameters, for a query string or a form body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn text(mut self, key: &str, value: impl Into<String>) -> Self {
        self.pairs.push((key.to_string(), value.into()));
        self
    }

    pub fn opt_text(self, key: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(v) => self.text(key, v),
            None => self,
        }
    }

    /// A boolean as Proxmox's form decoder accepts it: `1` or `0`.
    pub fn flag(self, key: &str, value: bool) -> Self {
        self.text(key, if value { "1" } else { "0" })
    }

    pub fn int(self, key: &str, value: impl Into<u64>) -> Self {
        self.text(key, value.into().to_string())
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// `k=v&k=v` with keys and values percent-encoded.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(&encode_component(k));
            out.push('=');
            out.push_str(&encode_component(v));
        }
        out
    }
}

/// Percent-encodes everything except RFC 3986's unreserved characters.
pub fn encode_component(text: &str) -> String {
    encode_keeping(text, |b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
}

/// The `sshkeys` value: the keys joined by newlines, percent-encoded with
/// everything but letters and digits escaped (space as `%20`, never `+`).
/// Proxmox stores it in this form; a form body encodes it a second time
/// (`%` → `%25`), which [`Form::encode`] does.
pub fn sshkeys_value(keys: &[String]) -> String {
    let joined = keys.iter().map(|k| k.trim()).collect::<Vec<_>>().join("\n");
    encode_keeping(&joined, |b| b.is_ascii_alphanumeric())
}

/// Undoes [`sshkeys_value`] (what `GET …/config` returns).
pub fn decode_sshkeys(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
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
    String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

fn encode_keeping(text: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if keep(b) {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_and_plus_are_escaped() {
        let f = Form::new()
            .text("boot", "order=scsi0;net0")
            .text("tags", "oxbake;role-web")
            .text("description", "a+b & c")
            .flag("full", false)
            .flag("purge", true);
        assert_eq!(
            f.encode(),
            "boot=order%3Dscsi0%3Bnet0&tags=oxbake%3Brole-web&description=a%2Bb%20%26%20c&full=0&purge=1"
        );
    }

    #[test]
    fn sshkeys_are_encoded_twice_in_a_form() {
        let keys = vec![
            "ssh-ed25519 AAAA+b/c= me@host".to_string(),
            "ssh-rsa X y".into(),
        ];
        let once = sshkeys_value(&keys);
        assert_eq!(
            once,
            "ssh%2Ded25519%20AAAA%2Bb%2Fc%3D%20me%40host%0Assh%2Drsa%20X%20y"
        );
        let body = Form::new().text("sshkeys", once.clone()).encode();
        assert_eq!(body, format!("sshkeys={}", once.replace('%', "%25")));
        assert_eq!(decode_sshkeys(&once), keys);
    }
}
