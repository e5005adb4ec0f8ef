//! What `oxbake.toml` may hold beyond its types: sizes and timeouts within
//! their bounds, channel names the registry can store, plain paths, and a
//! Proxmox endpoint, token id and fingerprint of the forms that can work.

use std::collections::BTreeSet;

use super::{Config, is_valid_name, limits};
use crate::diag::Diagnostics;
use crate::tomlfile;

/// The problems of a parsed `oxbake.toml` that its types let pass.
pub(super) fn settings(config: &Config) -> Diagnostics {
    let mut problems = Diagnostics::default();
    let source = &config.source;
    let mut at = |keys: &[&str], message: String| {
        let offset = source.value_start(keys).unwrap_or(0);
        problems.push(source.at(offset, message));
    };
    let d = &config.defaults;
    let bounded = [
        ("cores", u64::from(d.cores), limits::CORES),
        ("memory_mib", u64::from(d.memory_mib), limits::MEMORY_MIB),
        ("disk_gib", u64::from(d.disk_gib), limits::DISK_GIB),
        ("step_timeout", d.step_timeout, limits::TIMEOUT_SECS),
        ("boot_timeout", d.boot_timeout, limits::TIMEOUT_SECS),
    ];
    for (key, value, limit) in bounded {
        if let Some(message) = limit.problem(key, value) {
            at(&["defaults", key], message);
        }
    }
    let channels = &config.project.channels;
    if channels.is_empty() {
        at(
            &["project", "channels"],
            "`channels` is empty: name at least one channel (default: dev, staging, prod)"
                .to_owned(),
        );
    }
    let mut seen = BTreeSet::new();
    for (i, name) in channels.iter().enumerate() {
        let index = i.to_string();
        let keys = ["project", "channels", index.as_str()];
        if !is_valid_name(name) {
            at(
                &keys,
                format!(
                    "channel name `{}` must be lowercase letters, digits and `-`",
                    name.escape_default()
                ),
            );
        } else if !seen.insert(name) {
            at(&keys, format!("channel `{name}` is listed twice"));
        }
    }
    let secrets = &config.secrets;
    for (key, value) in [
        ("vault", &secrets.vault),
        ("password_file", &secrets.password_file),
    ] {
        if let Some(message) = value.as_deref().and_then(|v| tomlfile::plain_path(key, v)) {
            at(&["secrets", key], message);
        }
    }
    problems
}

/// Why a Proxmox endpoint is refused, if it is: it must be `https://HOST…`
/// (the API token goes with every request) and carry no userinfo. The
/// message never shows the value, which may hold a password.
pub(super) fn endpoint(value: &str) -> Option<String> {
    let Ok(url) = reqwest::Url::parse(value) else {
        return Some("`endpoint` is not a URL; expected `https://HOST:8006`".to_owned());
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Some(
            "`endpoint` holds userinfo (`USER:PASSWORD@` before the host), which is refused: \
             oxbake authenticates with `token_id` and the secret in the environment variable \
             `token_secret_env` names; remove the userinfo (and change that password)"
                .to_owned(),
        );
    }
    if url.scheme() != "https" {
        return Some(format!(
            "`endpoint` must be `https://`, not `{}:`: the API token would cross the network \
             in clear",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Some("`endpoint` names no host; expected `https://HOST:8006`".to_owned());
    }
    None
}

/// Why a token id is refused, if it is: Proxmox's form is
/// `USER@REALM!TOKEN` (the user without blanks, `:` or `/`; realm and token
/// a letter, then letters, digits, `.`, `-`, `_`).
pub(super) fn token_id(value: &str) -> Option<String> {
    let name = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
    };
    let ok = value
        .rsplit_once('!')
        .and_then(|(userid, token)| Some((userid.rsplit_once('@')?, token)))
        .is_some_and(|((user, realm), token)| {
            !user.is_empty()
                && !user
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || ":/".contains(c))
                && name(realm)
                && name(token)
        });
    (!ok).then(|| {
        format!(
            "`token_id` = \"{}\" is not of the form `USER@REALM!TOKEN` (e.g. `oxbake@pve!bake`)",
            value.escape_default()
        )
    })
}

/// Why a pinned fingerprint is refused, if it is: a SHA-256 is 32 bytes,
/// written as Proxmox shows it, two hex digits each, `:` between them.
pub(super) fn fingerprint(value: &str) -> Option<String> {
    let parts: Vec<&str> = value.split(':').collect();
    let ok = parts.len() == 32
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    (!ok).then(|| {
        format!(
            "`fingerprint` must be the certificate's SHA-256 as 32 hex bytes separated by `:` \
             (AB:CD:…, as `pvenode cert info` shows it); found {} part(s)",
            parts.len()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_https_without_userinfo() {
        assert_eq!(endpoint("https://pve.example:8006"), None);
        let m = endpoint("http://pve.example:8006").unwrap();
        assert!(m.contains("must be `https://`"), "{m}");
        let m = endpoint("https://root:hunter2@pve.example:8006").unwrap();
        assert!(
            m.contains("userinfo") && !m.contains("hunter2") && !m.contains("root"),
            "{m}"
        );
        let m = endpoint("https://root@pve.example").unwrap();
        assert!(m.contains("userinfo"), "{m}");
        assert!(endpoint("pve.example:8006").is_some());
        assert!(endpoint("not a url").is_some());
    }

    #[test]
    fn token_ids_are_user_at_realm_bang_token() {
        for ok in ["oxbake@pve!bake", "a@pve!b", "ops.user@ad-corp!ci_2"] {
            assert_eq!(token_id(ok), None, "{ok}");
        }
        for bad in [
            "oxbake@pve",
            "oxbake!bake",
            "@pve!bake",
            "oxbake@!bake",
            "oxbake@pve!",
            "ox bake@pve!bake",
            "oxbake@pve!ba=ke",
            "oxbake@pve!1bake",
            "",
            "ox/b@pve!t",
        ] {
            assert!(token_id(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_are_32_colon_separated_hex_bytes() {
        let good = ["AB"; 32].join(":");
        assert_eq!(fingerprint(&good), None);
        assert_eq!(fingerprint(&good.to_lowercase()), None);
        for bad in [
            ["AB"; 31].join(":"),
            ["AB"; 33].join(":"),
            "AB".repeat(32),
            good.replacen("AB", "GG", 1),
            good.replacen("AB", "A", 1),
            String::new(),
        ] {
            assert!(fingerprint(&bad).is_some(), "{bad}");
        }
    }
}
