//! Redaction by value: every occurrence of a secret becomes `[redacted]`
//! before text reaches a progress event, a log, a tail or an error.

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// The shortest line of a secret of several lines that is hidden on its own.
const MIN_LINE: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is hidden whole.
    secrets: Vec<Vec<u8>>,
}

impl Redactor {
    /// Hides each secret as written and in every form of [`forms`].
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Self {
        let mut secrets: Vec<Vec<u8>> = secrets
            .iter()
            .flat_map(|s| forms(s.as_ref()))
            .map(String::into_bytes)
            .filter(|s| !s.is_empty())
            .collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// The length of the longest secret (0 when there is none).
    pub fn longest(&self) -> usize {
        self.secrets.first().map_or(0, Vec::len)
    }

    pub fn redact(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.redact_bytes(text.as_bytes())).into_owned()
    }

    pub fn redact_bytes(&self, text: &[u8]) -> Vec<u8> {
        if self.secrets.is_empty() {
            return text.to_vec();
        }
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            match self.secret_at(text, i) {
                Some(len) => {
                    out.extend_from_slice(REDACTED.as_bytes());
                    i += len;
                }
                None => {
                    out.push(text[i]);
                    i += 1;
                }
            }
        }
        out
    }

    /// A safe place to cut `text` at or before `wanted` so that no secret
    /// straddles the cut.
    pub fn safe_cut(&self, text: &[u8], wanted: usize) -> usize {
        let mut cut = wanted.min(text.len());
        let mut i = 0;
        while i < cut {
            match self.secret_at(text, i) {
                Some(len) if i + len > cut => cut = i,
                Some(len) => i += len,
                None => i += 1,
            }
        }
        cut
    }

    fn secret_at(&self, text: &[u8], i: usize) -> Option<usize> {
        self.secrets
            .iter()
            .find(|s| text[i..].starts_with(s))
            .map(Vec::len)
    }
}

/// A secret as written and as a message may quote it: escaped the way
/// Rust's `{:?}` and `escape_default` and JSON write strings (a key of
/// several lines then shows `\n`), and, for a secret of several lines (a
/// PEM key), each line of [`MIN_LINE`] characters or more on its own (an
/// error that quotes one line of it).
pub fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![
        secret.to_owned(),
        secret.escape_debug().to_string(),
        secret.escape_default().to_string(),
    ];
    if let Ok(json) = serde_json::to_string(secret) {
        out.push(json[1..json.len() - 1].to_owned());
    }
    if secret.contains(['\n', '\r']) {
        let lines = secret
            .lines()
            .map(str::trim)
            .filter(|l| l.len() >= MIN_LINE);
        out.extend(lines.map(str::to_owned));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_every_occurrence_longest_first() {
        let r = Redactor::new(&["pw", "pw123"]);
        assert_eq!(r.redact("a pw123 b pw c"), "a [redacted] b [redacted] c");
    }

    #[test]
    fn escaped_forms_and_lines_of_a_key_are_hidden_too() {
        let key = "-----BEGIN KEY-----\nMIIEv\"Qk\\é\tAAA\nshort\n-----END KEY-----\n";
        let r = Redactor::new(&[key]);
        for text in [
            format!("{key:?}"),
            key.escape_default().to_string(),
            serde_json::to_string(key).unwrap(),
            "line: MIIEv\"Qk\\é\tAAA".to_owned(),
        ] {
            let shown = r.redact(&text);
            assert!(!shown.contains("MIIEv"), "{text} -> {shown}");
        }
        // Lines too short to be worth hiding alone stay (the whole key does not).
        assert_eq!(r.redact("a short line"), "a short line");
    }

    #[test]
    fn without_secrets_text_is_unchanged() {
        assert_eq!(Redactor::new::<&str>(&[]).redact("x y"), "x y");
    }

    #[test]
    fn cut_never_splits_a_secret() {
        let r = Redactor::new(&["secret"]);
        let text = b"abc secret def";
        assert_eq!(r.safe_cut(text, 7), 4);
        assert_eq!(r.safe_cut(text, 11), 11);
        assert_eq!(r.safe_cut(text, 2), 2);
    }
}
