//! TLS for the client-listener tests: a self-signed certificate for `127.0.0.1` written as
//! PEM files, and a reqwest client that trusts that certificate only.

use std::path::{Path, PathBuf};

/// A certificate and its key, as PEM text and as the files the proxy reads.
pub struct SelfSigned {
    pub cert_pem: String,
    pub key_pem: String,
}

impl SelfSigned {
    /// A fresh certificate for `127.0.0.1` and `localhost`.
    pub fn generate() -> SelfSigned {
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let certified =
            rcgen::generate_simple_self_signed(names).expect("generating a certificate");
        SelfSigned {
            cert_pem: certified.cert.pem(),
            key_pem: certified.signing_key.serialize_pem(),
        }
    }

    /// Writes `cert.pem` and `key.pem` into `dir` (replacing them by rename, as a renewal
    /// tool does); returns their paths.
    pub fn write_to(&self, dir: &Path) -> (PathBuf, PathBuf) {
        std::fs::create_dir_all(dir).expect("creating the certificate directory");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            let tmp = dir.join(format!("{name}.tmp"));
            std::fs::write(&tmp, text).expect("writing a PEM file");
            std::fs::rename(&tmp, &path).expect("renaming a PEM file");
            path
        };
        // The key first: a watcher that sees the new certificate also sees its key.
        let key = write("key.pem", &self.key_pem);
        let cert = write("cert.pem", &self.cert_pem);
        (cert, key)
    }

    /// A client that trusts this certificate and nothing else (HTTP/2 offered by ALPN).
    pub fn client(&self) -> reqwest::Client {
        self.builder().build().expect("building a TLS client")
    }

    /// [`Self::client`] limited to HTTP/1.1.
    pub fn http1_client(&self) -> reqwest::Client {
        self.builder()
            .http1_only()
            .build()
            .expect("building a TLS client")
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        crate::install_crypto();
        let root =
            reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).expect("parsing our own PEM");
        reqwest::Client::builder()
            .no_proxy()
            .timeout(crate::http::CALL_TIMEOUT)
            .tls_certs_only([root])
    }
}
