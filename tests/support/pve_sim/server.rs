//! The HTTPS listener: TLS with the committed self-signed test certificate,
//! HTTP/1.1 through hyper, then auth, logging and routing.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::http::{self, Reply, Req};
use super::routes;
use super::state::{Logged, Shared, lock};

pub const CERT_PEM: &[u8] = include_bytes!("../../data/pve-sim-cert.pem");
const KEY_PEM: &[u8] = include_bytes!("../../data/pve-sim-key.pem");

/// Binds 127.0.0.1 on a free port and serves until the runtime ends.
pub async fn serve(shared: Shared, auth: String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let acceptor = TlsAcceptor::from(Arc::new(tls_config()));
    let auth = Arc::new(auth);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, shared, auth) = (acceptor.clone(), shared.clone(), auth.clone());
            tokio::spawn(async move {
                frozen(&shared).await;
                // A client that rejects the certificate ends the handshake.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = service_fn(move |req| {
                    let (shared, auth) = (shared.clone(), auth.clone());
                    async move { handle(&shared, &auth, req).await }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

fn tls_config() -> rustls::ServerConfig {
    let certs = vec![CertificateDer::from_pem_slice(CERT_PEM).expect("test certificate")];
    let key = PrivateKeyDer::from_pem_slice(KEY_PEM).expect("test key");
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("tls versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("tls config")
}

/// Returns only once the API is not frozen.
async fn frozen(shared: &Shared) {
    while lock(shared).faults.frozen {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// One request's answer; an error drops the connection without one (a
/// cut upload).
async fn handle(
    shared: &Shared,
    auth: &str,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    frozen(shared).await;
    if let Some(to) = lock(shared).faults.redirect_to.clone() {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = hyper::StatusCode::FOUND;
        if let Ok(to) = hyper::header::HeaderValue::from_str(&to) {
            res.headers_mut().insert("location", to);
        }
        return Ok(res);
    }
    let (parts, mut body) = req.into_parts();
    if let Some(limit) = cut_upload(shared, &parts) {
        let mut seen = 0;
        while seen < limit {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                _ => break,
            }
        }
        lock(shared).log.push(Logged {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: String::new(),
            body: format!("<connection dropped after {seen} bytes of the body>"),
            status: 0,
        });
        return Err(std::io::Error::other("upload cut off (simulated)"));
    }
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let raw_path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or_default().to_string();
    let content_type = header(&parts.headers, "content-type");
    let mut decoded = Req {
        method: parts.method.to_string(),
        ..Default::default()
    };
    let signalled = signal_on(shared, &decoded.method, &raw_path);
    let reply = match decode(&raw_path, &query, &content_type, &body, &mut decoded) {
        Err(msg) => http::error(400, &msg, false),
        Ok(()) if header(&parts.headers, "authorization") != auth => {
            http::error(401, "authentication failure", false)
        }
        Ok(()) => routes::route(shared, &decoded),
    };
    let logged_body = if content_type.starts_with("multipart/") {
        format!("{:?}", decoded.params)
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    lock(shared).log.push(Logged {
        method: decoded.method.clone(),
        path: raw_path.clone(),
        query,
        body: logged_body,
        status: reply.status,
    });
    hold(shared, &decoded.method, &raw_path, signalled).await;
    Ok(respond(reply))
}

/// The armed cut, once, if this request is an upload.
fn cut_upload(shared: &Shared, parts: &hyper::http::request::Parts) -> Option<usize> {
    let upload = parts.method == hyper::Method::POST && parts.uri.path().ends_with("/upload");
    let mut st = lock(shared);
    upload.then(|| st.faults.cut_upload_at.take()).flatten()
}

/// Fires the armed signal if this request is its trigger; returns how
/// long the answer is then held.
fn signal_on(shared: &Shared, method: &str, path: &str) -> Option<std::time::Duration> {
    let mut st = lock(shared);
    let armed = st.faults.signal_on.as_ref()?;
    if armed.method != method || !path.ends_with(armed.suffix) {
        return None;
    }
    let armed = st.faults.signal_on.take()?;
    let sent = std::process::Command::new("kill")
        .args([format!("-{}", armed.signal), armed.pid.to_string()])
        .status();
    assert!(
        sent.is_ok_and(|s| s.success()),
        "kill -{} {}",
        armed.signal,
        armed.pid
    );
    Some(armed.hold)
}

/// Holds the answer as the faults say (a matching [`super::state::HeldAnswer`],
/// or the hold after a signal).
async fn hold(shared: &Shared, method: &str, path: &str, signalled: Option<std::time::Duration>) {
    let held = {
        let st = lock(shared);
        st.faults
            .held_answers
            .iter()
            .find(|h| h.method == method && path.ends_with(h.suffix))
            .map(|h| h.after)
    };
    match (held, signalled) {
        (Some(None), _) => std::future::pending::<()>().await,
        (Some(Some(after)), _) | (None, Some(after)) => tokio::time::sleep(after).await,
        (None, None) => {}
    }
}

fn header(headers: &hyper::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn decode(path: &str, query: &str, ctype: &str, body: &[u8], req: &mut Req) -> Result<(), String> {
    let rest = path.strip_prefix("/api2/json/").ok_or("no such path")?;
    req.segments = rest.split('/').map(http::percent_decode).collect();
    http::decode_form(query, &mut req.params);
    if body.is_empty() {
        return Ok(());
    }
    if matches!(req.method.as_str(), "GET" | "DELETE") {
        return Err(format!("Unexpected content for method '{}'", req.method));
    }
    if ctype.starts_with("multipart/form-data") {
        return http::decode_multipart(ctype, body, req);
    }
    http::decode_form(&String::from_utf8_lossy(body), &mut req.params);
    Ok(())
}

fn respond(reply: Reply) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(reply.body.to_string())));
    *res.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap_or_default();
    res.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    if let Some(reason) = reply.reason {
        let line = reason.lines().next().unwrap_or_default().to_string();
        if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(line.into_bytes()) {
            res.extensions_mut().insert(phrase);
        }
    }
    res
}
