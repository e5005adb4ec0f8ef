//! The proxy's requests: a file the current index names, with that SHA256
//! in the store, is answered from the store; everything else is fetched
//! from its repository (with the client's own Authorization, which goes
//! upstream and nowhere else), relayed as it arrives, and stored when the
//! index named it and its content matched. Release/InRelease are always
//! fetched whole from the repository: they are what everything else is
//! checked against (apt checks their signature).

use std::sync::Mutex;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::http::{Request, response_head};
use super::index::{Expected, Index};
use super::store::Store;
use super::{Counters, LogFn};

/// Request headers passed on to the repository.
const FORWARDED: &[&str] = &[
    "authorization",
    "range",
    "if-range",
    "if-modified-since",
    "user-agent",
    "accept",
    "cache-control",
];
/// Response headers passed back to apt.
const RELAYED: &[&str] = &["content-type", "last-modified", "etag", "content-range"];

pub(super) struct Shared {
    pub store: Store,
    pub index: Mutex<Index>,
    pub client: reqwest::Client,
    pub counters: Counters,
    pub log: LogFn,
    /// (host the clients name, host to fetch from instead).
    pub alias: Option<(String, String)>,
}

/// What a request is about: the URL it names (credentials and query
/// removed: the key everything is known by, and what is logged) and the
/// URL to fetch.
struct Target {
    key: String,
    fetch: reqwest::Url,
    basic: Option<(String, String)>,
}

fn target(raw: &str) -> Option<Target> {
    let mut url = reqwest::Url::parse(raw).ok()?;
    if url.scheme() != "http" || url.host_str().is_none() {
        return None;
    }
    let basic = (!url.username().is_empty()).then(|| {
        let user = url.username().to_owned();
        let password = url.password().unwrap_or_default().to_owned();
        (user, password)
    });
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    let mut key = url.clone();
    key.set_query(None);
    Some(Target {
        key: unescape_key(key.as_str()),
        fetch: url,
        basic,
    })
}

/// The key as the signed indices spell file names: apt escapes `+` and
/// `~` (frequent in Debian versions: `2+deb12u3`, `590-2.1~deb12u2`) as
/// `%2b` and `%7e`, while a Packages index names the file with the plain
/// characters. Only characters that may stand plain in a URL path are
/// unescaped; anything else (a slash, a space, a control character) stays
/// escaped, so a key never spans lines or folders it did not name.
fn unescape_key(url: &str) -> String {
    const PLAIN: &[u8] = b"+~-._!$&'()*,;=:@";
    let bytes = url.as_bytes();
    let mut out = String::with_capacity(url.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| url.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .filter(|b| b.is_ascii_alphanumeric() || PLAIN.contains(b));
        match decoded {
            Some(b) => {
                out.push(char::from(b));
                i += 3;
            }
            None => {
                out.push(char::from(bytes[i]));
                i += 1;
            }
        }
    }
    out
}

fn is_release(key: &str) -> bool {
    key.ends_with("/InRelease") || key.ends_with("/Release")
}

/// Answers one request; `Err` when the connection cannot go on.
pub(super) async fn answer<W: AsyncWrite + Unpin>(
    shared: &Shared,
    req: &Request,
    w: &mut W,
) -> std::io::Result<()> {
    let head_only = req.method == "HEAD";
    let Some(t) = (req.method == "GET" || head_only)
        .then(|| target(&req.target))
        .flatten()
    else {
        (shared.log)(&format!(
            "apt cache: refused {} (only GET and HEAD of http:// URLs)",
            req.method
        ));
        let body = b"oxbake's package cache proxies http:// GET and HEAD only\n";
        let head = response_head(405, Some(body.len() as u64), &[], false);
        w.write_all(head.as_bytes()).await?;
        w.write_all(body).await?;
        return Err(std::io::ErrorKind::Unsupported.into());
    };
    let expected = shared
        .index
        .lock()
        .ok()
        .and_then(|i| i.get(&t.key).cloned());
    if !head_only
        && let Some(exp) = &expected
        && let Some((file, _)) = shared.store.get(&exp.sha256, exp.size)
    {
        return from_store(shared, &t, exp, file, req.keep_alive, w).await;
    }
    upstream(shared, req, &t, expected, head_only, w).await
}

async fn from_store<W: AsyncWrite + Unpin>(
    shared: &Shared,
    t: &Target,
    exp: &Expected,
    file: std::fs::File,
    keep_alive: bool,
    w: &mut W,
) -> std::io::Result<()> {
    let mut file = tokio::fs::File::from_std(file);
    let head = response_head(200, Some(exp.size), &[], keep_alive);
    w.write_all(head.as_bytes()).await?;
    let keep = exp.is_packages_index().then(Vec::new);
    let sent = copy(&mut file, w, keep, exp.size).await?;
    if let Some(body) = sent
        && let Ok(mut i) = shared.index.lock()
    {
        i.learn_packages(&t.key, &exp.name, &body);
    }
    shared
        .counters
        .cached(exp.is_package())
        .fetch_add(exp.size, Ordering::Relaxed);
    (shared.log)(&format!("apt cache: from cache {} ({} B)", t.key, exp.size));
    Ok(())
}

/// Copies `len` bytes, keeping a copy in `keep` when asked.
async fn copy<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut R,
    w: &mut W,
    mut keep: Option<Vec<u8>>,
    len: u64,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = r.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        w.write_all(&buf[..n]).await?;
        if let Some(k) = keep.as_mut() {
            k.extend_from_slice(&buf[..n]);
        }
        left -= n as u64;
    }
    Ok(keep)
}

async fn upstream<W: AsyncWrite + Unpin>(
    shared: &Shared,
    req: &Request,
    t: &Target,
    expected: Option<Expected>,
    head_only: bool,
    w: &mut W,
) -> std::io::Result<()> {
    let release = is_release(&t.key);
    let method = if head_only {
        reqwest::Method::HEAD
    } else {
        reqwest::Method::GET
    };
    let mut fetch = t.fetch.clone();
    if let Some((name, real)) = &shared.alias
        && fetch.host_str() == Some(name.as_str())
    {
        let _ = fetch.set_host(Some(real));
    }
    let mut out = shared.client.request(method, fetch);
    for (name, value) in &req.headers {
        // A Release is always fetched whole: it is what the cache learns from.
        let conditional = matches!(name.as_str(), "range" | "if-range" | "if-modified-since");
        if FORWARDED.contains(&name.as_str()) && !(release && conditional) {
            out = out.header(name.as_str(), value.as_str());
        }
    }
    if let Some((user, password)) = &t.basic {
        out = out.basic_auth(user, Some(password));
    }
    let mut resp = match out.send().await {
        Ok(resp) => resp,
        Err(e) => {
            let host = t.fetch.host_str().unwrap_or_default();
            let why = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "cannot connect"
            } else {
                "failed"
            };
            (shared.log)(&format!("apt cache: {} {why} (from {host})", t.key));
            let head = response_head(502, Some(0), &[], req.keep_alive);
            return w.write_all(head.as_bytes()).await;
        }
    };
    let status = resp.status().as_u16();
    let relayed: Vec<(&str, String)> = RELAYED
        .iter()
        .filter_map(|n| {
            let v = resp.headers().get(*n)?.to_str().ok()?;
            Some((*n, v.to_owned()))
        })
        .collect();
    let no_body = head_only || status == 304 || status == 204 || (100..200).contains(&status);
    let length = resp.content_length();
    if no_body {
        let length = if head_only { length } else { None };
        let head = response_head(status, length, &relayed, req.keep_alive);
        w.write_all(head.as_bytes()).await?;
        (shared.log)(&format!("apt cache: {status} {}", t.key));
        return Ok(());
    }
    let whole = status == 200;
    let mut pending = match (&expected, whole) {
        (Some(exp), true) => shared.store.writer(&exp.sha256),
        _ => None,
    };
    let learn = whole && (release || expected.as_ref().is_some_and(Expected::is_packages_index));
    let mut body = Vec::new();
    let mut sent = 0u64;
    // With a length the body is relayed as it arrives; without one it is
    // gathered first (the head needs its length).
    if let Some(len) = length {
        let head = response_head(status, Some(len), &relayed, req.keep_alive);
        w.write_all(head.as_bytes()).await?;
    }
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(_) => return Err(std::io::ErrorKind::ConnectionAborted.into()),
        };
        if let Some(p) = pending.as_mut()
            && p.write(&chunk).is_err()
        {
            pending = None;
        }
        sent += chunk.len() as u64;
        if length.is_some() {
            w.write_all(&chunk).await?;
            if learn {
                body.extend_from_slice(&chunk);
            }
        } else {
            body.extend_from_slice(&chunk);
        }
    }
    if let Some(len) = length
        && sent != len
    {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if length.is_none() {
        let head = response_head(status, Some(sent), &relayed, req.keep_alive);
        w.write_all(head.as_bytes()).await?;
        w.write_all(&body).await?;
    }
    let stored = pending.is_some_and(|p| p.finish());
    if learn && let Ok(mut i) = shared.index.lock() {
        match &expected {
            _ if release => i.learn_release(&t.key, &String::from_utf8_lossy(&body)),
            Some(exp) => i.learn_packages(&t.key, &exp.name, &body),
            None => {}
        }
    }
    let package = expected
        .as_ref()
        .map_or(t.key.ends_with(".deb"), Expected::is_package);
    shared
        .counters
        .outside(package)
        .fetch_add(sent, Ordering::Relaxed);
    let kept = if stored { ", stored" } else { "" };
    (shared.log)(&format!(
        "apt cache: {status} from outside {} ({sent} B{kept})",
        t.key
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_query_stay_out_of_the_key() {
        let t = target("http://user:pw@h:8080/debian/pool/a.deb?token=x#f").unwrap();
        assert_eq!(t.key, "http://h:8080/debian/pool/a.deb");
        assert_eq!(t.fetch.as_str(), "http://h:8080/debian/pool/a.deb?token=x");
        assert_eq!(t.basic, Some(("user".into(), "pw".into())));
        assert!(target("https://h/x").is_none() && target("h:443").is_none());
        assert!(is_release("http://h/dists/s/InRelease"));
    }

    #[test]
    fn the_key_spells_a_file_as_the_packages_index_does() {
        let t =
            target("http://h/debian/pool/main/c/chrony/chrony_4.3-2%2bdeb12u3_amd64.deb").unwrap();
        assert_eq!(
            t.key,
            "http://h/debian/pool/main/c/chrony/chrony_4.3-2+deb12u3_amd64.deb"
        );
        assert_eq!(
            unescape_key("http://h/l/less_590-2.1%7Edeb12u2_amd64.deb"),
            "http://h/l/less_590-2.1~deb12u2_amd64.deb"
        );
        // Escapes that would change the path's shape or the log stay.
        for kept in ["a%2fb", "a%0ab", "a%20b", "a%25b", "a%zzb", "a%2"] {
            assert_eq!(unescape_key(kept), kept);
        }
        // The fetched URL is the one apt asked for.
        assert!(t.fetch.as_str().contains("%2b"));
    }
}
