//! TLS for `tls://` targets: rustls with ring, trusting either a CA file
//! (PEM) or the webpki roots.

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
    match ca_file {
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| tls_err(format!("CA file {}: {e}", path.display())))?;
            for cert in certs {
                let cert = cert.map_err(|e| tls_err(format!("CA file {}: {e}", path.display())))?;
                store
                    .add(cert)
                    .map_err(|e| tls_err(format!("CA file {}: {e}", path.display())))?;
            }
            if store.is_empty() {
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
        .map_err(tls_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webpki_roots_load() {
        assert!(!roots(None).unwrap().is_empty());
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
