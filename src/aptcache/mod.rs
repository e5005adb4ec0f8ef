//! A package cache for builders: an HTTP forward proxy on 127.0.0.1 that
//! builder VMs' apt uses for `http://` repositories (local builders reach
//! it at QEMU user networking's 10.0.2.2), keyed by the repositories'
//! signed metadata. See docs/operations.md ("Package cache for builders").
//!
//! - Release/InRelease always come from the repository; the proxy learns
//!   from them the SHA256 of every index file, and from the Packages
//!   indices it passes the SHA256 of every package.
//! - A request is answered from the store only when the latest index names
//!   its URL and the store holds a file with that SHA256 and size; a
//!   rebuilt repository's new index names new hashes, so an old file is
//!   never served for it.
//! - The store ([`store`]) names files by SHA256 only: no URL, host or
//!   credential is written to it; Authorization headers go to the
//!   repository and nowhere else, and logged URLs carry neither
//!   credentials nor query.
//! - It counts what came from outside and what from the store
//!   ([`Stats`]), packages and indices apart.

mod error;
mod http;
mod index;
mod proxy;
mod store;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use error::AptCacheError;

/// Where the store is pruned to when a proxy starts (least recently used
/// files go first).
pub const DEFAULT_MAX_BYTES: u64 = 4 << 30;

/// Receives one line per request (no credentials in it).
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// A running proxy; it stops when dropped.
pub struct AptCache {
    port: u16,
    shared: Arc<proxy::Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    packages_outside: AtomicU64,
    packages_cached: AtomicU64,
    indices_outside: AtomicU64,
    indices_cached: AtomicU64,
}

impl Counters {
    fn outside(&self, package: bool) -> &AtomicU64 {
        if package {
            &self.packages_outside
        } else {
            &self.indices_outside
        }
    }

    fn cached(&self, package: bool) -> &AtomicU64 {
        if package {
            &self.packages_cached
        } else {
            &self.indices_cached
        }
    }
}

/// Bytes served so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub packages_outside: u64,
    pub packages_cached: u64,
    pub indices_outside: u64,
    pub indices_cached: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "apt: {} from outside, {} from cache (indices: {} from outside, {} from cache)",
            bytes(self.packages_outside),
            bytes(self.packages_cached),
            bytes(self.indices_outside),
            bytes(self.indices_cached)
        )
    }
}

/// `15.8 MB`, `0 B` (decimal units, as apt prints them).
fn bytes(n: u64) -> String {
    const UNITS: &[&str] = &["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

impl AptCache {
    /// Prunes the store in `dir` to `max_bytes` and starts serving on a free
    /// port of 127.0.0.1 (needs a Tokio runtime).
    pub async fn start(dir: &Path, max_bytes: u64, log: LogFn) -> Result<Self, AptCacheError> {
        Self::start_with(dir, max_bytes, log, None).await
    }

    /// [`start`](Self::start), and URLs on the host `alias.0` (how the
    /// clients reach this machine, `10.0.2.2` from QEMU user networking)
    /// are fetched from `alias.1` (`127.0.0.1`); they keep their name in
    /// the cache's keys and logs.
    pub async fn start_with(
        dir: &Path,
        max_bytes: u64,
        log: LogFn,
        alias: Option<(&str, &str)>,
    ) -> Result<Self, AptCacheError> {
        let store = store::Store::open(dir)?;
        let removed = store.prune(max_bytes);
        if removed > 0 {
            log(&format!(
                "apt cache: pruned {} to stay under {}",
                bytes(removed),
                bytes(max_bytes)
            ));
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .read_timeout(Duration::from_secs(120))
            .build()
            .map_err(AptCacheError::Client)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(AptCacheError::Listen)?;
        let port = listener.local_addr().map_err(AptCacheError::Listen)?.port();
        let shared = Arc::new(proxy::Shared {
            store,
            index: Mutex::default(),
            client,
            counters: Counters::default(),
            log,
            alias: alias.map(|(a, b)| (a.to_owned(), b.to_owned())),
        });
        let task = tokio::spawn(serve(listener, shared.clone()));
        Ok(Self { port, shared, task })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The proxy's URL as a guest that reaches this machine's loopback at
    /// `host` sees it (`http://10.0.2.2:PORT/`).
    pub fn url_for(&self, host: &str) -> String {
        format!("http://{host}:{}/", self.port)
    }

    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            packages_outside: get(&c.packages_outside),
            packages_cached: get(&c.packages_cached),
            indices_outside: get(&c.indices_outside),
            indices_cached: get(&c.indices_cached),
        }
    }
}

impl Drop for AptCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<proxy::Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let shared = shared.clone();
        connections.spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut r = tokio::io::BufReader::new(r);
            while let Ok(Some(req)) = http::read_request(&mut r).await {
                let keep = req.keep_alive;
                if proxy::answer(&shared, &req, &mut w).await.is_err() || !keep {
                    break;
                }
            }
        });
        // Finished connections are reaped; the set (and every connection
        // with it) goes when the proxy is dropped.
        while connections.try_join_next().is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_like_apts() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(15_800_000), "15.8 MB");
        let s = Stats {
            packages_outside: 15_800_000,
            ..Stats::default()
        };
        assert!(
            s.to_string()
                .starts_with("apt: 15.8 MB from outside, 0 B from cache")
        );
    }
}
