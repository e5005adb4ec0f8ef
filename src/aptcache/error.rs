//! What can go wrong with the package cache itself (a request that fails
//! upstream is answered with 502 and logged, not returned).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AptCacheError {
    #[error("package cache: cannot use {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("package cache: cannot listen on 127.0.0.1: {0}")]
    Listen(#[source] std::io::Error),
    #[error("package cache: cannot make the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

impl AptCacheError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
