//! The client listener's certificate: loaded from PEM files when the policy is compiled, and
//! served from the active policy on every handshake, so a reload (file change, `SIGHUP`,
//! `POST /admin/reload`) swaps it for new connections without a restart.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::ring::default_provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::state::AppState;

/// Reads a PEM certificate chain and its private key, and checks that they belong together.
/// Errors name the file, never its content.
pub fn load(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, String> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let cert_pem = read(cert_file)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            format!(
                "{} is not a PEM certificate chain: {e}",
                cert_file.display()
            )
        })?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert_file.display()));
    }
    let key_pem = read(key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("{} is not a PEM private key: {e}", key_file.display()))?;
    CertifiedKey::from_der(chain, key, &default_provider()).map_err(|e| {
        format!(
            "the key in {} does not fit the certificate in {}: {e}",
            key_file.display(),
            cert_file.display()
        )
    })
}

/// Hands rustls the certificate of the active policy; the one the listener started with if
/// a reload removed `server.tls` (turning TLS off takes a restart).
pub struct PolicyCertificate {
    state: Arc<AppState>,
    started_with: Arc<CertifiedKey>,
}

impl PolicyCertificate {
    pub fn new(state: Arc<AppState>, started_with: Arc<CertifiedKey>) -> Self {
        Self {
            state,
            started_with,
        }
    }
}

impl fmt::Debug for PolicyCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PolicyCertificate")
    }
}

impl ResolvesServerCert for PolicyCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let policy = self.state.policy();
        Some(match &policy.server.tls {
            Some(tls) => tls.certificate.clone(),
            None => self.started_with.clone(),
        })
    }
}

/// The rustls configuration of the client listener: HTTP/2 or HTTP/1.1 by ALPN, the
/// certificate resolved per handshake.
pub fn server_config(resolver: PolicyCertificate) -> Result<rustls::ServerConfig, String> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::load;

    #[test]
    fn missing_and_malformed_files_are_named() {
        let dir = std::env::temp_dir().join(format!("switchyard-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let error = load(&cert, &key).expect_err("no files");
        assert!(error.starts_with("cannot read"), "{error}");
        assert!(error.contains("cert.pem"), "{error}");

        std::fs::write(&cert, "not pem").expect("write");
        std::fs::write(
            &key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        let error = load(&cert, &key).expect_err("no certificate");
        assert!(error.contains("holds no certificate"), "{error}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
