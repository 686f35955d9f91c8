//! The TLS client configuration every outgoing connection uses (the LDAP reader, the SCIM
//! client): rustls on ring, trusting the configured CA file or else the system's roots.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why no TLS configuration could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TlsError {
    /// The CA file cannot be read or holds no certificate.
    #[error("{0}")]
    Ca(String),
    /// rustls refused the protocol versions (not expected with ring's defaults).
    #[error("{0}")]
    Setup(String),
}

/// Trusts the PEM certificates in `ca_file`, or the system's roots when `None`.
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let at = |e: &dyn std::fmt::Display| TlsError::Ca(format!("{}: {e}", path.display()));
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| TlsError::Ca(format!("cannot read {}: {e}", path.display())))?;
            for cert in certs {
                roots.add(cert.map_err(|e| at(&e))?).map_err(|e| at(&e))?;
            }
            if roots.is_empty() {
                return Err(TlsError::Ca(format!(
                    "{} holds no PEM certificate",
                    path.display()
                )));
            }
        }
        None => {
            const BUNDLES: [&str; 2] = [
                "/etc/ssl/certs/ca-certificates.crt",
                "/etc/pki/tls/certs/ca-bundle.crt",
            ];
            for path in BUNDLES {
                if let Ok(certs) = CertificateDer::pem_file_iter(path) {
                    for cert in certs.flatten() {
                        let _ = roots.add(cert);
                    }
                    break;
                }
            }
            // Else every handshake would fail as "unknown issuer", naming no cause.
            if roots.is_empty() {
                return Err(TlsError::Ca(format!(
                    "this system has no CA certificates ({} or {}): name the CA's file",
                    BUNDLES[0], BUNDLES[1]
                )));
            }
        }
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| TlsError::Setup(e.to_string()))
}

/// Trusts any server certificate (`insecure_skip_verify`): the handshake still checks that
/// the server holds the key of the certificate it shows, only not who vouches for it.
pub(crate) fn unverified_client_config() -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        })
        .map_err(|e| TlsError::Setup(e.to_string()))
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
