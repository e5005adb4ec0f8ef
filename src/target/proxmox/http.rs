//! The transport: one authenticated request to `…/api2/json/PATH`, the
//! response envelope decoded into data or a typed [`PveError`].
//!
//! Retries: a GET is retried on connection failures, timeouts and 502-504
//! (it changes nothing); any other method only when the connection could
//! not be made, since then the request was never sent. A POST that may have
//! reached the server is never repeated blindly.
//!
//! Each attempt (connect, send, whole answer read) gets the request timeout
//! (`request_timeout`, default 120 s). A request left without an answer ends
//! as [`PveError::NoAnswer`], naming the endpoint and the request: for a GET
//! after every attempt timed out, for anything else after the first, since
//! the server may still have carried it out (see `create.rs` for the clone).
//! A client made [`PveClient::until`] a deadline gives each attempt no more
//! than what is left of it, so a wait's requests never outlast the wait.
//!
//! The token goes only to the configured `https://` endpoint: a plain
//! `http://` endpoint is refused before any request is built, and
//! redirects are never followed (a 3xx is an error naming its target).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::form::Form;
use super::tls::{self, TlsTrust};
use super::{ApiToken, PveError, envelope};

/// Attempts for a request that may be retried.
const ATTEMPTS: u32 = 4;
/// How long making a connection (TCP and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one attempt may wait for its whole answer, unless configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// A request body.
pub(crate) enum Body {
    None,
    Form(Form),
    /// A multipart body and its boundary.
    Multipart {
        boundary: String,
        bytes: Vec<u8>,
    },
    /// A multipart body around a file streamed from disk (`size` bytes,
    /// sent with its length: pveproxy takes no chunked uploads). Each
    /// attempt reads the file afresh.
    File {
        boundary: String,
        head: Vec<u8>,
        path: std::path::PathBuf,
        size: u64,
        tail: Vec<u8>,
    },
}

/// An authenticated Proxmox VE API client.
#[derive(Clone)]
pub struct PveClient {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
    token_id: String,
    retry_delay: Duration,
    request_timeout: Duration,
    /// When set, no attempt (or pause between attempts) goes past it.
    cutoff: Option<tokio::time::Instant>,
}

impl std::fmt::Debug for PveClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PveClient")
            .field("base", &self.base)
            .field("token_id", &self.token_id)
            .finish_non_exhaustive()
    }
}

impl PveClient {
    /// A client for `endpoint` (`https://host:8006`, an optional trailing
    /// `/api2/json` is accepted).
    pub fn new(endpoint: &str, token: &ApiToken, trust: &TlsTrust) -> Result<Self, PveError> {
        let base = base_url(endpoint)?;
        let builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .http1_only();
        let http = tls::configure(builder, trust)?
            .build()
            .map_err(|e| PveError::Tls(e.to_string()))?;
        Ok(Self {
            http,
            base,
            auth: token.header()?,
            token_id: token.id().to_string(),
            retry_delay: Duration::from_millis(500),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            cutoff: None,
        })
    }

    /// This client, with every request cut off at `at` (the end of the
    /// wait it serves): an attempt gets min(request timeout, time left).
    pub fn until(&self, at: tokio::time::Instant) -> Self {
        let mut bounded = self.clone();
        bounded.cutoff = Some(self.cutoff.map_or(at, |c| c.min(at)));
        bounded
    }

    /// When the next attempt must end, and whether the cutoff (not the
    /// request timeout) is what ends it.
    fn attempt_end(&self) -> (tokio::time::Instant, bool) {
        let full = tokio::time::Instant::now() + self.request_timeout;
        match self.cutoff {
            Some(at) if at <= full => (at, true),
            _ => (full, false),
        }
    }

    /// How long one attempt of a request may wait for its whole answer.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long one attempt of a request may wait for its answer.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The token's id (`user@realm!name`; not secret), for messages.
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// The endpoint as configured (`https://host:8006`), for messages.
    pub fn endpoint(&self) -> &str {
        self.base.trim_end_matches("/api2/json")
    }

    /// The pause between retried attempts (doubles each time).
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: Form) -> Result<T, PveError> {
        self.call(Method::GET, path, query, Body::None).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, form: Form) -> Result<T, PveError> {
        self.call(Method::POST, path, Form::new(), Body::Form(form))
            .await
    }

    pub async fn put<T: DeserializeOwned>(&self, path: &str, form: Form) -> Result<T, PveError> {
        self.call(Method::PUT, path, Form::new(), Body::Form(form))
            .await
    }

    pub async fn delete<T: DeserializeOwned>(
        &self,
        path: &str,
        query: Form,
    ) -> Result<T, PveError> {
        self.call(Method::DELETE, path, query, Body::None).await
    }

    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: Form,
        body: Body,
    ) -> Result<T, PveError> {
        let what = format!("{method} {path}");
        let mut url = format!("{}{}", self.base, path);
        if !query.is_empty() {
            url = format!("{url}?{}", query.encode());
        }
        let mut delay = self.retry_delay;
        for attempt in 1..=ATTEMPTS {
            let started = tokio::time::Instant::now();
            let (end, cut) = self.attempt_end();
            // With the cutoff binding, no time is left for another attempt.
            let last = attempt == ATTEMPTS || cut;
            let once = self.attempt(&method, &url, &body, &what, last);
            match tokio::time::timeout_at(end, once).await {
                Ok(Some(Err(PveError::Unreachable { .. }))) => {
                    return Err(self.unreachable(what, attempt));
                }
                Ok(Some(done)) => return done,
                Ok(None) => {}
                Err(_) if !last && method == Method::GET => {}
                Err(_) => {
                    return Err(PveError::NoAnswer {
                        endpoint: self.endpoint().to_string(),
                        what,
                        within: if cut {
                            end.saturating_duration_since(started)
                        } else {
                            self.request_timeout
                        },
                        attempts: attempt,
                    });
                }
            }
            let pause_end = tokio::time::Instant::now() + delay;
            tokio::time::sleep_until(self.cutoff.map_or(pause_end, |c| c.min(pause_end))).await;
            delay *= 2;
        }
        unreachable!("the last attempt always returns")
    }

    /// No connection (TCP and TLS) within the connect timeout, on every
    /// attempt: nothing was sent.
    fn unreachable(&self, what: String, attempts: u32) -> PveError {
        PveError::Unreachable {
            endpoint: self.endpoint().to_string(),
            what,
            within: CONNECT_TIMEOUT.min(self.request_timeout),
            attempts,
        }
    }

    /// One attempt: its outcome, or `None` when it failed in a way that
    /// may be retried (never on the `last` attempt).
    async fn attempt<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &str,
        body: &Body,
        what: &str,
        last: bool,
    ) -> Option<Result<T, PveError>> {
        match self.send(method, url, body).await {
            Err(e) if let Some(reason) = untrusted(&e) => Some(Err(PveError::Untrusted {
                endpoint: self.endpoint().to_string(),
                reason,
            })),
            Err(e) if !last && retry_error(method, &e) => None,
            Err(e) if e.is_connect() && e.is_timeout() => {
                Some(Err(self.unreachable(what.to_string(), 0)))
            }
            Err(e) => Some(Err(transport_error(what.to_string(), &e))),
            Ok(resp) if !last && retry_status(method, resp.status()) => None,
            Ok(resp) => Some(envelope::decode(what.to_string(), resp).await),
        }
    }

    async fn send(
        &self,
        method: &Method,
        url: &str,
        body: &Body,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(AUTHORIZATION, self.auth.clone());
        req = match body {
            Body::None => req,
            Body::Form(form) => req
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.encode()),
            Body::Multipart { boundary, bytes } => req
                .header(
                    CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(bytes.clone()),
            Body::File {
                boundary,
                head,
                path,
                size,
                tail,
            } => req
                .header(
                    CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .header(
                    reqwest::header::CONTENT_LENGTH,
                    head.len() as u64 + size + tail.len() as u64,
                )
                .body(reqwest::Body::wrap_stream(file_stream(
                    head.clone(),
                    path.clone(),
                    tail.clone(),
                ))),
        };
        req.send().await
    }
}

/// `head`, the file's bytes in 1 MiB chunks, then `tail`. A read error
/// ends the body (the request fails; the server discards the upload).
fn file_stream(
    head: Vec<u8>,
    path: std::path::PathBuf,
    tail: Vec<u8>,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;
    let chunks = futures_util::stream::unfold(
        (Some(path), None::<tokio::fs::File>),
        |(path, file)| async move {
            let mut file = match file {
                Some(file) => file,
                None => match tokio::fs::File::open(path?).await {
                    Ok(file) => file,
                    Err(e) => return Some((Err(e), (None, None))),
                },
            };
            let mut buf = vec![0u8; 1 << 20];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(buf), (None, Some(file))))
                }
                Err(e) => Some((Err(e), (None, None))),
            }
        },
    );
    futures_util::stream::once(async { Ok(head) })
        .chain(chunks)
        .chain(futures_util::stream::once(async { Ok(tail) }))
}

/// `https://host[:port]/api2/json` for an endpoint. Plain `http://` is
/// refused (the token would travel in clear), and so is userinfo
/// (`https://user:pass@host`): it would be sent and shown in messages.
fn base_url(endpoint: &str) -> Result<String, PveError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/api2/json").unwrap_or(trimmed);
    let Ok(url) = reqwest::Url::parse(trimmed) else {
        return Err(PveError::InvalidEndpoint(endpoint.to_string()));
    };
    if !url.username().is_empty() || url.password().is_some() {
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(PveError::EndpointUserinfo(shown.to_string()));
    }
    if url.scheme() == "http" {
        return Err(PveError::PlainHttpEndpoint(endpoint.to_string()));
    }
    if url.scheme() != "https" || url.host().is_none() {
        return Err(PveError::InvalidEndpoint(endpoint.to_string()));
    }
    Ok(format!("{trimmed}/api2/json"))
}

fn retry_error(method: &Method, e: &reqwest::Error) -> bool {
    e.is_connect() || (*method == Method::GET && (e.is_timeout() || e.is_request()))
}

fn retry_status(method: &Method, status: StatusCode) -> bool {
    *method == Method::GET && matches!(status.as_u16(), 502..=504)
}

pub(super) fn transport_error(what: String, e: &reqwest::Error) -> PveError {
    PveError::Transient {
        what,
        status: e.status().map(|s| s.as_u16()),
        message: chain(e),
    }
}

/// Why the certificate was refused, if `e` is a TLS failure: the pinned
/// verifier's mismatch (both fingerprints), or the roots' verdict with how
/// to trust the server. Such failures are never retried.
fn untrusted(e: &reqwest::Error) -> Option<String> {
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        let tls = rustls_error(err);
        if let Some(tls) = tls {
            return Some(match tls {
                rustls::Error::General(reason) => reason.clone(),
                rustls::Error::InvalidCertificate(problem) => format!(
                    "{}: the certificate is not trusted by the system roots or `ca_file`; \
                     name the CA that signed it (`ca_file`, or the server's own certificate \
                     there) or pin its SHA-256 (`fingerprint`)",
                    tls::certificate_problem(problem)
                ),
                rustls::Error::AlertReceived(_) => "the server ended the TLS handshake".into(),
                rustls::Error::PeerIncompatible(_) => {
                    "the server offers no TLS version or cipher suite oxbake accepts".into()
                }
                _ => "the TLS handshake failed".into(),
            });
        }
        cur = err.source();
    }
    None
}

/// The rustls error in `err`, looking into io::Errors: hyper and the TLS
/// stream each wrap it in one, and `io::Error::source()` skips what it
/// wraps.
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = err.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    rustls_error(inner)
}

/// The error and its causes on one line (TLS failures hide in the causes).
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised() {
        assert_eq!(
            base_url("https://pve.example:8006/").unwrap(),
            "https://pve.example:8006/api2/json"
        );
        assert_eq!(
            base_url("https://10.0.0.2:8006/api2/json").unwrap(),
            "https://10.0.0.2:8006/api2/json"
        );
        for bad in ["pve.example:8006", "ftp://x", "https://"] {
            assert!(
                matches!(base_url(bad), Err(PveError::InvalidEndpoint(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_token_is_never_set_up_for_plain_http_or_userinfo() {
        let token = ApiToken::new("oxbake@pve!ci", "s3cret-token".into()).unwrap();
        for plain in ["http://pve.example:8006", " HTTP://10.0.0.2:8006/api2/json"] {
            let err = PveClient::new(plain, &token, &TlsTrust::SystemRoots).unwrap_err();
            assert!(matches!(err, PveError::PlainHttpEndpoint(_)), "{err}");
            assert!(err.is_invalid_input());
            assert!(
                err.to_string().contains("never sends the API token"),
                "{err}"
            );
        }
        let err = PveClient::new(
            "https://root:hunter2@pve.example:8006",
            &token,
            &TlsTrust::SystemRoots,
        )
        .unwrap_err();
        assert!(matches!(err, PveError::EndpointUserinfo(_)), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.is_invalid_input());
    }
}
