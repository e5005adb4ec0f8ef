//! Whether the package repositories a role's image was built from changed:
//! each source the image recorded is fetched (its `InRelease`) and the
//! sha256 compared with the recorded one. A source that cannot be fetched
//! is reported as such, never taken for unchanged.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use sha2::{Digest, Sha256 as Hasher};

use super::sources::{AptSource, Login, StepSource};
use crate::registry::Sha256;
use crate::secrets::Secrets;

/// How long one `InRelease` download may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);

/// What the repository check found for one image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepoCheck {
    /// List files whose `InRelease` differs from the recorded one.
    pub changed: Vec<String>,
    /// List files that could not be fetched, with why.
    pub failed: Vec<(String, String)>,
    /// Recorded list files no known source maps to (not checked).
    pub unknown: Vec<String>,
    /// List files fetched and found unchanged.
    pub unchanged: Vec<String>,
}

/// Fetches `InRelease` files over HTTP(S).
#[derive(Debug, Clone)]
pub struct RepoFetcher {
    client: reqwest::Client,
}

impl RepoFetcher {
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(FETCH_TIMEOUT).build()?;
        Ok(Self { client })
    }

    /// The sha256 of `source`'s `InRelease`; the error says why not,
    /// without the URL's login or the password.
    pub async fn digest(&self, source: &AptSource) -> Result<Sha256, String> {
        let mut request = self.client.get(source.in_release_url());
        if let Some(login) = &source.login {
            request = request.basic_auth(&login.username, Some(&login.password));
        }
        let response = request.send().await.map_err(describe)?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("HTTP status {status}"));
        }
        let body = response.bytes().await.map_err(describe)?;
        hex::encode(Hasher::digest(&body))
            .parse()
            .map_err(|e| format!("{e}"))
    }

    /// Compares every recorded list file a known source maps to.
    /// `secrets` gives the passwords of step sources that need one.
    pub async fn check(
        &self,
        recorded: &BTreeMap<String, Sha256>,
        base: &[AptSource],
        steps: &[StepSource],
        secrets: &Secrets,
    ) -> RepoCheck {
        let mut known: BTreeMap<String, AptSource> = BTreeMap::new();
        for source in base {
            known.insert(source.list_file(), source.clone());
        }
        for step in steps {
            known.insert(step.source.list_file(), with_login(step, secrets));
        }
        let mut check = RepoCheck::default();
        let mut wanted = Vec::new();
        for (file, digest) in recorded {
            match known.get(file) {
                Some(source) => wanted.push((file, digest, source)),
                None => check.unknown.push(file.clone()),
            }
        }
        let fetched = join_all(wanted.iter().map(|(_, _, s)| self.digest(s))).await;
        for ((file, recorded, _), result) in wanted.into_iter().zip(fetched) {
            match result {
                Ok(now) if now == *recorded => check.unchanged.push(file.clone()),
                Ok(_) => check.changed.push(file.clone()),
                Err(why) => check.failed.push((file.clone(), why)),
            }
        }
        check
    }
}

/// The names of the secrets the sources need (to load them once).
pub fn secret_names(steps: &[StepSource]) -> Vec<&str> {
    steps
        .iter()
        .filter(|s| s.username.is_some())
        .filter_map(|s| s.password_secret.as_deref())
        .collect()
}

fn with_login(step: &StepSource, secrets: &Secrets) -> AptSource {
    let mut source = step.source.clone();
    if let Some(username) = &step.username {
        let password = step
            .password_secret
            .as_deref()
            .and_then(|name| secrets.get(name))
            .unwrap_or_default();
        source.login = Some(Login {
            username: username.clone(),
            password: password.to_owned(),
        });
    }
    source
}

/// A transport error without its URL (which may carry a login).
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    format!("{kind}: {}", super::chain(&e.without_url()))
}
