//! oxbake's package cache for builders (src/aptcache/) between this
//! machine's real apt and the real signed test repository
//! (tests/support/aptrepo.rs), with basic auth: a second fetch reads no
//! package from the repository, a rebuilt repository is never answered
//! from the cache, and the credentials reach neither the cache folder nor
//! the proxy's log.

use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use oxbake::aptcache::{AptCache, DEFAULT_MAX_BYTES, Stats};

use crate::support::aptrepo::{AptRepo, IsolatedApt, PACKAGE, VERSION};

const USER: &str = "cache-customer";
const PASSWORD: &str = "pw-that-must-not-leak";

/// A proxy on its own runtime, its log lines kept.
struct Proxy {
    cache: Option<AptCache>,
    log: Arc<Mutex<Vec<String>>>,
    rt: tokio::runtime::Runtime,
}

impl Proxy {
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, None)
    }

    fn start_with(dir: &Path, alias: Option<(&str, &str)>) -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        let sink: oxbake::aptcache::LogFn =
            Arc::new(move |line: &str| lines.lock().unwrap().push(line.to_owned()));
        let cache = rt
            .block_on(AptCache::start_with(dir, DEFAULT_MAX_BYTES, sink, alias))
            .unwrap();
        Self {
            cache: Some(cache),
            log,
            rt,
        }
    }

    fn url(&self) -> String {
        self.cache.as_ref().unwrap().url_for("127.0.0.1")
    }

    fn stats(&self) -> Stats {
        self.cache.as_ref().unwrap().stats()
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        self.cache.take();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `apt-get update` and `apt-get download` in a fresh apt through `proxy`;
/// the downloaded package's bytes.
fn fetch(repo: &AptRepo, proxy: &Proxy) -> Vec<u8> {
    fetch_at(repo, "127.0.0.1", proxy)
}

/// [`fetch`] with the repository named by `host`.
fn fetch_at(repo: &AptRepo, host: &str, proxy: &Proxy) -> Vec<u8> {
    let apt = IsolatedApt::at_host(
        repo,
        host,
        repo.key_armored(),
        Some((USER, PASSWORD)),
        Some(&proxy.url()),
    );
    for args in [&["update"][..], &["download", PACKAGE]] {
        let out = apt.apt_get(args);
        let log = text(&out);
        assert!(out.status.success(), "apt-get {args:?}:\n{log}");
        assert!(!log.contains("W:") && !log.contains("E:"), "{log}");
    }
    std::fs::read(apt.path(&format!("out/{PACKAGE}_{VERSION}_all.deb"))).unwrap()
}

fn debs_fetched(repo: &AptRepo) -> usize {
    repo.requests()
        .iter()
        .filter(|r| r.path.ends_with(".deb") && r.status == 200)
        .count()
}

#[test]
fn a_second_fetch_reads_no_package_from_the_repository() {
    let repo = AptRepo::start(USER, PASSWORD);
    let cache = tempfile::tempdir().unwrap();
    let first = Proxy::start(cache.path());
    let deb = fetch(&repo, &first);
    let s1 = first.stats();
    assert_eq!(s1.packages_outside, deb.len() as u64, "{s1:?}");
    assert_eq!((s1.packages_cached, s1.indices_cached), (0, 0), "{s1:?}");
    assert_eq!(debs_fetched(&repo), 1);
    drop(first);

    // The next bake's proxy, over the same cache folder.
    let before = repo.requests().len();
    let second = Proxy::start(cache.path());
    assert_eq!(fetch(&repo, &second), deb);
    let s2 = second.stats();
    assert_eq!(s2.packages_outside, 0, "{s2:?}");
    assert_eq!(s2.packages_cached, deb.len() as u64, "{s2:?}");
    assert!(s2.indices_cached > 0, "Packages from the cache: {s2:?}");
    assert!(s2.to_string().contains(" 0 B from outside"), "{s2}");
    // Only the signed Release came from the repository again.
    let again: Vec<String> = repo.requests()[before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert!(
        again
            .iter()
            .all(|p| p.ends_with("Release") || p.ends_with("Release.gpg")),
        "{again:?}"
    );
}

#[test]
fn a_rebuilt_repository_is_never_answered_from_the_cache() {
    let repo = AptRepo::start(USER, PASSWORD);
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path());
    let old = fetch(&repo, &proxy);
    repo.rebuild("2.0-rebuilt");
    // The same proxy (it has seen the old index) and a new one.
    for proxy in [&proxy, &Proxy::start(cache.path())] {
        let before = debs_fetched(&repo);
        let new = fetch(&repo, proxy);
        assert_ne!(new, old, "the old package was served for the new index");
        assert!(
            new.windows(3).any(|w| w == b"\x1f\x8b\x08"),
            "a .deb with a gzip member"
        );
        assert!(debs_fetched(&repo) <= before + 1);
    }
    // Now both packages are cached, each under its own hash; the new one
    // was fetched once.
    assert_eq!(debs_fetched(&repo), 2);
}

#[test]
fn credentials_reach_neither_the_cache_folder_nor_the_log() {
    let repo = AptRepo::start(USER, PASSWORD);
    let cache = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(cache.path());
    fetch(&repo, &proxy);
    fetch(&repo, &proxy);
    // What apt sends: the Authorization header's base64 of `user:password`.
    let basic = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(format!("{USER}:{PASSWORD}").as_bytes())?;
            c.wait_with_output()
        })
        .map(|o| String::from_utf8(o.stdout).unwrap())
        .unwrap();
    let secrets = [USER, PASSWORD, basic.as_str()];
    let mut files = 0;
    let mut walk = vec![cache.path().to_owned()];
    while let Some(dir) = walk.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!secrets.iter().any(|s| name.contains(s)), "{name}");
            if entry.file_type().unwrap().is_dir() {
                walk.push(entry.path());
            } else {
                files += 1;
                let bytes = std::fs::read(entry.path()).unwrap();
                for s in secrets {
                    assert!(
                        !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                        "{name} holds a credential"
                    );
                }
            }
        }
    }
    assert!(files >= 2, "the package and its index are cached");
    let log = proxy.log();
    assert!(log.iter().any(|l| l.contains("from cache")), "{log:?}");
    for line in &log {
        assert!(!secrets.iter().any(|s| line.contains(s)), "{line}");
    }
}

#[test]
fn a_repository_on_the_guests_view_of_the_host_is_fetched_from_the_loopback() {
    let repo = AptRepo::start(USER, PASSWORD);
    let cache = tempfile::tempdir().unwrap();
    // As a builder names this machine (10.0.2.2); here, a name only the
    // proxy knows.
    let host = "builder-host.invalid";
    let proxy = Proxy::start_with(cache.path(), Some((host, "127.0.0.1")));
    fetch_at(&repo, host, &proxy);
    assert_eq!(debs_fetched(&repo), 1);
    let log = proxy.log();
    assert!(
        log.iter().any(|l| l.contains(&format!("http://{host}:"))),
        "{log:?}"
    );
}
