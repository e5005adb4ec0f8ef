//! How the client trusts the server: the system roots, a CA file (e.g. the
//! cluster's `pve-root-ca.pem`), or a pinned SHA-256 fingerprint of the
//! server's certificate (what `pvenode cert info` prints).
//!
//! Pinning compares the leaf certificate only; names and chains are not
//! checked, as with Proxmox's own `TlsOptions::Fingerprint`. A mismatch
//! aborts the handshake, so nothing is ever sent to an unpinned server.
//! A `ca_file` that holds the server's own (self-signed) certificate pins
//! it the same way: the presented certificate must be byte for byte one of
//! the file's; any other must chain to one of them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use super::PveError;

/// Which certificates the client accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsTrust {
    SystemRoots,
    CaFile(PathBuf),
    Fingerprint([u8; 32]),
}

/// Parses `AA:BB:…` or plain hex into 32 bytes.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], PveError> {
    let hexdigits: String = text.trim().chars().filter(|c| *c != ':').collect();
    let bytes =
        hex::decode(&hexdigits).map_err(|_| PveError::InvalidFingerprint(text.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| PveError::InvalidFingerprint(text.to_string()))
}

/// `AA:BB:…`, as Proxmox shows fingerprints.
pub fn format_fingerprint(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Applies `trust` to a reqwest client builder.
pub fn configure(
    builder: reqwest::ClientBuilder,
    trust: &TlsTrust,
) -> Result<reqwest::ClientBuilder, PveError> {
    match trust {
        TlsTrust::SystemRoots => Ok(builder),
        TlsTrust::CaFile(path) => {
            let certs = read_ca_file(path)?;
            Ok(builder.tls_backend_preconfigured(ca_file_config(path, certs)?))
        }
        TlsTrust::Fingerprint(expected) => {
            Ok(builder.tls_backend_preconfigured(pinned_config(*expected)?))
        }
    }
}

/// The certificates in a PEM file (at least one).
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, PveError> {
    let ca_err = |message: String| PveError::CaFile {
        path: path.to_path_buf(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_err(format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(ca_err("no certificate in the file".into()));
    }
    Ok(certs)
}

/// The file's certificates as trust anchors for the usual chain check;
/// a server that presents one of them exactly (a self-signed server
/// certificate, which the chain check refuses as "a CA used as an end
/// entity") is accepted as if its fingerprint were pinned.
fn ca_file_config(
    path: &Path,
    certs: Vec<CertificateDer<'static>>,
) -> Result<rustls::ClientConfig, PveError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs.iter().cloned());
    let chain = if added == 0 {
        None
    } else {
        let built =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build();
        Some(built.map_err(|e| PveError::CaFile {
            path: path.to_path_buf(),
            message: format!("cannot trust its certificates: {e}"),
        })?)
    };
    let pins = certs
        .iter()
        .map(|c| Sha256::digest(c.as_ref()).into())
        .collect();
    let otherwise = match chain {
        Some(chain) => Otherwise::Chain(chain),
        None => Otherwise::UnknownIssuer,
    };
    client_config(
        Arc::new(PinVerifier {
            pins,
            otherwise,
            provider: provider.clone(),
        }),
        provider,
    )
}

fn pinned_config(expected: [u8; 32]) -> Result<rustls::ClientConfig, PveError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(PinVerifier {
        pins: vec![expected],
        otherwise: Otherwise::Mismatch,
        provider: provider.clone(),
    });
    client_config(verifier, provider)
}

fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
    provider: Arc<CryptoProvider>,
) -> Result<rustls::ClientConfig, PveError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PveError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts a leaf certificate whose SHA-256 is one of `pins` (a
/// `fingerprint`, or a certificate of the `ca_file` presented as it is),
/// else does what `otherwise` says; either way the handshake signatures
/// are checked with the presented key.
#[derive(Debug)]
struct PinVerifier {
    pins: Vec<[u8; 32]>,
    otherwise: Otherwise,
    provider: Arc<CryptoProvider>,
}

/// What a certificate that matches no pin meets.
#[derive(Debug)]
enum Otherwise {
    /// The chain check against the `ca_file`'s certificates (names and
    /// dates checked).
    Chain(Arc<WebPkiServerVerifier>),
    /// Refused: no certificate of the `ca_file` can be a trust anchor.
    UnknownIssuer,
    /// Refused: the `fingerprint` is the only trust.
    Mismatch,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let actual: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if self.pins.contains(&actual) {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.otherwise {
            Otherwise::Chain(chain) => {
                chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Otherwise::UnknownIssuer => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
            Otherwise::Mismatch => Err(rustls::Error::General(format!(
                "server certificate fingerprint mismatch: expected {}, got {}",
                format_fingerprint(self.pins.first().map_or(&[][..], |p| &p[..])),
                format_fingerprint(&actual)
            ))),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// What a refused certificate means, in words (rustls shows several of
/// its errors by their Rust names).
pub(super) fn certificate_problem(e: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let text = match e {
        C::BadEncoding => "the certificate is malformed",
        C::Expired | C::ExpiredContext { .. } => "the certificate has expired",
        C::NotValidYet | C::NotValidYetContext { .. } => "the certificate is not valid yet",
        C::Revoked => "the certificate is revoked",
        C::UnknownIssuer => "no trusted CA issued the certificate",
        C::BadSignature => "the certificate's signature is invalid",
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            "the certificate is not valid for the endpoint's host name"
        }
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "the certificate is not meant for a TLS server"
        }
        C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "the certificate is signed with an unsupported algorithm"
        }
        C::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
            "the server presents a CA certificate as its own"
        }
        _ => "the certificate failed verification",
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let colons = "BF:0E:0E:84:27:40:7C:C4:B2:70:95:E3:14:2F:B5:9D:B4:56:89:0A:4B:10:BD:11:52:E3:2D:3F:88:87:51:D2";
        let a = parse_fingerprint(colons).unwrap();
        let b = parse_fingerprint(&colons.replace(':', "").to_lowercase()).unwrap();
        assert_eq!(a, b);
        assert_eq!(format_fingerprint(&a), colons);
        for bad in ["", "BF:0E", "zz", &format!("{colons}:00")] {
            assert!(matches!(
                parse_fingerprint(bad),
                Err(PveError::InvalidFingerprint(_))
            ));
        }
    }
}
