//! TLS for `tls://` targets: rustls with ring, trusting the webpki roots
//! plus, when given, the certificates of a CA file (PEM): a private CA is
//! added to the public roots, it does not replace them.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, RootCertStore};
use tokio_rustls::{client::TlsStream, TlsConnector};

use super::ClientError;

fn tls_err(what: impl std::fmt::Display) -> ClientError {
    ClientError::Io(std::io::Error::other(format!("tls: {what}")))
}

fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, ClientError> {
    let mut store = RootCertStore::empty();
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let public = store.len();
    match ca_file {
        None => {}
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| tls_err(format!("CA file {}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| tls_err(format!("CA file {}: {e}", path.display())))?;
                store
                    .add(cert)
                    .map_err(|e| tls_err(format!("CA file {}: {e}", path.display())))?;
            }
            if store.len() == public {
                return Err(tls_err(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
        }
    }
    Ok(store)
}

pub(super) fn connector(ca_file: Option<&Path>) -> Result<TlsConnector, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_root_certificates(roots(ca_file)?)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

pub(super) async fn wrap(
    tcp: TcpStream,
    host: &str,
    ca_file: Option<&Path>,
) -> Result<TlsStream<TcpStream>, ClientError> {
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| ClientError::BadTarget(format!("{host}: not a TLS server name: {e}")))?;
    connector(ca_file)?
        .connect(name, tcp)
        .await
        .map_err(|e| classify_handshake(host, e))
}

/// A certificate the server presents and we refuse will be refused again
/// on every retry: that is a permanent, named error, not a flaky network.
fn classify_handshake(host: &str, e: std::io::Error) -> ClientError {
    let rejected = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|r| match r {
            rustls::Error::InvalidCertificate(why) => Some(format!("{why:?}")),
            rustls::Error::NoCertificatesPresented => Some("no certificate presented".into()),
            _ => None,
        });
    match rejected {
        Some(why) => ClientError::Certificate {
            target: host.to_string(),
            reason: why,
        },
        None => tls_err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webpki_roots_load() {
        assert!(!roots(None).unwrap().is_empty());
    }

    #[test]
    fn a_ca_file_adds_to_the_public_roots() {
        let public = roots(None).unwrap().len();
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), include_str!("../../../tests/tls/test-ca.pem")).unwrap();
        assert_eq!(roots(Some(f.path())).unwrap().len(), public + 1);
    }

    #[test]
    fn certificate_rejections_are_permanent() {
        let io = std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let e = classify_handshake("tp.example.com", io);
        assert!(matches!(e, ClientError::Certificate { .. }), "{e:?}");
        assert!(!e.is_transient());
        assert!(e.to_string().contains("tp.example.com"), "{e}");
        assert!(e.to_string().contains("UnknownIssuer"), "{e}");
        let other = classify_handshake("h", std::io::Error::other("reset"));
        assert!(other.is_transient());
    }

    #[test]
    fn missing_or_empty_ca_file_is_an_error() {
        assert!(roots(Some(Path::new("/nonexistent/ca.pem"))).is_err());
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), "not a pem\n").unwrap();
        let e = roots(Some(f.path())).unwrap_err().to_string();
        assert!(e.contains("no certificate"), "{e}");
    }
}
