//! Proxmox task ids (UPIDs):
//! `UPID:node:pid(8 hex):pstart(8-9 hex):starttime(8 hex):type:id:user:`.

use std::fmt;
use std::str::FromStr;

use super::PveError;

/// A parsed UPID. `Display` gives back the exact text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upid {
    raw: String,
    pub node: String,
    pub pid: u32,
    pub pstart: u64,
    pub starttime: u64,
    pub kind: String,
    pub id: String,
    pub user: String,
}

impl FromStr for Upid {
    type Err = PveError;

    fn from_str(s: &str) -> Result<Self, PveError> {
        parse(s).ok_or_else(|| PveError::InvalidUpid(s.to_string()))
    }
}

fn parse(s: &str) -> Option<Upid> {
    let body = s.strip_prefix("UPID:")?.strip_suffix(':')?;
    let parts: Vec<&str> = body.split(':').collect();
    let [node, pid, pstart, start, kind, id, user] = parts.as_slice() else {
        return None;
    };
    let field_ok = |f: &str| !f.contains(|c: char| c.is_whitespace() || c == '/');
    let ok = valid_node(node)
        && hex(pid, 8..=8)
        && hex(pstart, 8..=9)
        && hex(start, 8..=8)
        && !kind.is_empty()
        && !user.is_empty()
        && [*kind, *id, *user].into_iter().all(field_ok);
    if !ok {
        return None;
    }
    Some(Upid {
        raw: s.to_string(),
        node: node.to_string(),
        pid: u32::from_str_radix(pid, 16).ok()?,
        pstart: u64::from_str_radix(pstart, 16).ok()?,
        starttime: u64::from_str_radix(start, 16).ok()?,
        kind: kind.to_string(),
        id: id.to_string(),
        user: user.to_string(),
    })
}

fn valid_node(node: &str) -> bool {
    let b = node.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn hex(field: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&field.len()) && field.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A worker endpoint's answer: a task, or `null` when the work was done at
/// once. Parsed here, where the API answers, so every wait gets a [`Upid`].
pub(super) fn answer(answer: Option<String>) -> Result<Option<Upid>, PveError> {
    answer.map(|text| text.parse()).transpose()
}

impl Upid {
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_clone_task_by_a_token() {
        let raw = "UPID:pve1:0000C2A1:0A3F1B2C:6650A1B2:qmclone:9000:oxbake@pve!ci:";
        let u: Upid = raw.parse().unwrap();
        assert_eq!(u.node, "pve1");
        assert_eq!(u.pid, 0xC2A1);
        assert_eq!(u.pstart, 0x0A3F1B2C);
        assert_eq!(u.starttime, 0x6650A1B2);
        assert_eq!((u.kind.as_str(), u.id.as_str()), ("qmclone", "9000"));
        assert_eq!(u.user, "oxbake@pve!ci");
        assert_eq!(u.to_string(), raw);
    }

    #[test]
    fn empty_id_and_nine_digit_pstart_are_valid() {
        let u: Upid = "UPID:n-1:00000001:1A3F1B2C0:6650A1B2:imgcopy::root@pam:"
            .parse()
            .unwrap();
        assert_eq!((u.id.as_str(), u.pstart), ("", 0x1A3F1B2C0));
    }

    #[test]
    fn malformed_upids_are_refused() {
        for bad in [
            "UPID:pve1:0000C2A1:0A3F1B2C:6650A1B2:qmclone:9000:root@pam",
            "pve1:0000C2A1:0A3F1B2C:6650A1B2:qmclone:9000:root@pam:",
            "UPID:-pve:0000C2A1:0A3F1B2C:6650A1B2:qmclone:9000:root@pam:",
            "UPID:pve1:C2A1:0A3F1B2C:6650A1B2:qmclone:9000:root@pam:",
            "UPID:pve1:0000C2A1:0A3F1B2C:6650A1B2::9000:root@pam:",
            "UPID:pve1:0000C2A1:0A3F1B2C:6650A1B2:qm clone:9000:root@pam:",
        ] {
            assert!(
                matches!(bad.parse::<Upid>(), Err(PveError::InvalidUpid(_))),
                "{bad}"
            );
        }
    }
}
