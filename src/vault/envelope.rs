//! The text around the cipher, as ansible-core writes it:
//!
//! ```text
//! $ANSIBLE_VAULT;1.1;AES256            (or $ANSIBLE_VAULT;1.2;AES256;LABEL)
//! 3932...  hex, wrapped at 80 columns, a newline after the last line
//! ```
//!
//! The hex body decodes to `hex(salt) \n hex(hmac) \n hex(ciphertext)`: the
//! parts are hex-encoded twice.

use super::crypto::Sealed;

pub const MAGIC: &str = "$ANSIBLE_VAULT";
const CIPHER: &str = "AES256";
const WIDTH: usize = 80;
const MAC_LEN: usize = 32;

/// What a file's header says, kept so that a rewrite keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The vault id label of a 1.2 file (`None`: a 1.1 file).
    pub vault_id: Option<String>,
}

/// Why a text is not a readable vault. Names the fault, never the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not an Ansible vault (the first line must be `$ANSIBLE_VAULT;1.1;AES256`)")]
    NotVault,
    #[error("unsupported vault format version `{0}` (1.1 and 1.2 are supported)")]
    Version(String),
    #[error("unsupported vault cipher `{0}` (only AES256 is supported)")]
    Cipher(String),
    #[error("corrupted file: {0} is not valid hex")]
    Hex(&'static str),
    #[error("corrupted file: the body is truncated ({0})")]
    Short(&'static str),
}

/// Splits a vault file into its header and sealed parts.
pub fn parse(text: &str) -> Result<(Header, Sealed), FormatError> {
    let mut lines = text.lines();
    let first = lines.next().ok_or(FormatError::NotVault)?;
    let header = parse_header(first)?;
    let body: String = lines.map(str::trim).collect();
    if body.is_empty() {
        return Err(FormatError::Short("no body"));
    }
    let inner = hex::decode(body).map_err(|_| FormatError::Hex("the body"))?;
    let mut parts = inner.splitn(3, |&b| b == b'\n');
    let mut next = |what: &'static str| {
        let part = parts.next().filter(|p| !p.is_empty());
        let part = part.ok_or(FormatError::Short(what))?;
        hex::decode(part).map_err(|_| FormatError::Hex(what))
    };
    let salt = next("the salt")?;
    let mac = next("the hmac")?;
    let ciphertext = next("the ciphertext")?;
    if mac.len() != MAC_LEN {
        return Err(FormatError::Short("the hmac"));
    }
    if !ciphertext.len().is_multiple_of(16) {
        return Err(FormatError::Short("the ciphertext"));
    }
    Ok((
        header,
        Sealed {
            salt,
            mac,
            ciphertext,
        },
    ))
}

fn parse_header(line: &str) -> Result<Header, FormatError> {
    let fields: Vec<&str> = line.trim().split(';').map(str::trim).collect();
    if fields.first() != Some(&MAGIC) || fields.len() < 3 {
        return Err(FormatError::NotVault);
    }
    let vault_id = match (fields[1], fields.get(3)) {
        ("1.1", None) => None,
        ("1.2", Some(id)) if !id.is_empty() => Some((*id).to_owned()),
        ("1.1" | "1.2", _) => return Err(FormatError::NotVault),
        (other, _) => return Err(FormatError::Version(other.to_owned())),
    };
    if fields[2] != CIPHER {
        return Err(FormatError::Cipher(fields[2].to_owned()));
    }
    if fields.len() > 4 {
        return Err(FormatError::NotVault);
    }
    Ok(Header { vault_id })
}

/// Why `label` cannot be a vault id label, by Ansible's rules (and what
/// its reader trims off): `None` when it can.
pub fn label_problem(label: &str) -> Option<&'static str> {
    if label.is_empty() {
        Some("is empty")
    } else if !label.is_ascii() {
        Some("must be ASCII")
    } else if label.chars().any(|c| c.is_ascii_control()) {
        Some("must not hold a newline or another control character")
    } else if label.contains(';') {
        Some("must not hold `;` (it separates the header's fields)")
    } else if label.trim() != label {
        Some("must not start or end with white space (readers trim it off)")
    } else {
        None
    }
}

/// Writes a vault file: the header, then the doubly hex-encoded parts in
/// lines of 80 characters, each ending in a newline.
pub fn format(header: &Header, sealed: &Sealed) -> String {
    let inner = [
        hex::encode(&sealed.salt),
        hex::encode(&sealed.mac),
        hex::encode(&sealed.ciphertext),
    ]
    .join("\n");
    let body = hex::encode(inner);
    let mut text = match &header.vault_id {
        Some(id) => format!("{MAGIC};1.2;{CIPHER};{id}\n"),
        None => format!("{MAGIC};1.1;{CIPHER}\n"),
    };
    for chunk in body.as_bytes().chunks(WIDTH) {
        // Hex digits are ASCII: every chunk boundary is a char boundary.
        text.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        text.push('\n');
    }
    text
}

/// Whether `text` starts like a vault (whatever follows).
pub fn looks_encrypted(text: &str) -> bool {
    text.trim_start().starts_with(MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed() -> Sealed {
        Sealed {
            salt: vec![1; 32],
            mac: vec![2; 32],
            ciphertext: vec![3; 48],
        }
    }

    #[test]
    fn format_wraps_at_80_and_parses_back() {
        for id in [None, Some("prod".to_owned())] {
            let header = Header { vault_id: id };
            let text = format(&header, &sealed());
            let mut lines = text.lines();
            let first = lines.next().unwrap();
            assert!(first.starts_with("$ANSIBLE_VAULT;1."), "{first}");
            let body: Vec<&str> = lines.collect();
            assert!(body[..body.len() - 1].iter().all(|l| l.len() == 80));
            assert!(text.ends_with('\n'));
            assert_eq!(parse(&text).unwrap(), (header, sealed()));
        }
    }

    #[test]
    fn broken_files_give_clean_errors() {
        let good = format(&Header::default(), &sealed());
        let cases: Vec<(String, FormatError)> = vec![
            (String::new(), FormatError::NotVault),
            ("vault_db_password: x\n".into(), FormatError::NotVault),
            (
                "$ANSIBLE_VAULT;1.2;AES256\n00\n".into(),
                FormatError::NotVault,
            ),
            (
                "$ANSIBLE_VAULT;2.0;AES256\n00\n".into(),
                FormatError::Version("2.0".into()),
            ),
            (
                "$ANSIBLE_VAULT;1.1;AES\n00\n".into(),
                FormatError::Cipher("AES".into()),
            ),
            (
                "$ANSIBLE_VAULT;1.1;AES256\n".into(),
                FormatError::Short("no body"),
            ),
            (good.replacen('3', "z", 3), FormatError::Hex("the body")),
            (
                good.replacen("\n", "\nabc", 1),
                FormatError::Hex("the body"),
            ),
            (
                good[..good.len() / 2].to_owned(),
                FormatError::Short("the ciphertext"),
            ),
            (
                format!("$ANSIBLE_VAULT;1.1;AES256\n{}\n", hex::encode("0101\n")),
                FormatError::Short("the hmac"),
            ),
            (
                format!("$ANSIBLE_VAULT;1.1;AES256\n{}\n", hex::encode("zz\n00\n00")),
                FormatError::Hex("the salt"),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(parse(&text).unwrap_err(), want, "{text:?}");
        }
    }
}
