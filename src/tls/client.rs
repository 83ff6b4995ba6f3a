//! The TLS side of `https://` back ends: a rustls client config per back end
//! that verifies the server certificate against the system trust store (plus
//! an optional per-back-end `ca` bundle), sends SNI, offers ALPN `http/1.1`
//! and, if configured, presents a client certificate. `tls_verify = false`
//! accepts any certificate (handshake signatures are still checked) and is
//! warned about at every load.
//!
//! Compiled with the snapshot; the handshake itself runs ([`crate::tls::connect`],
//! called by [`crate::proxy::forward`]) on every new back-end connection, never
//! a downgrade to plain HTTP.

use super::pem::{add_roots, certified_key, load_certs, load_key, provider};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::{Arc, OnceLock};

/// What a back end's TLS is configured with (the keys of its table).
#[derive(Debug, Clone, Default)]
pub struct ClientTlsSettings {
    pub verify: bool,
    pub ca: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

/// A back end's compiled TLS.
#[derive(Debug)]
pub struct ClientTls {
    pub config: Arc<ClientConfig>,
    /// SNI and the name the certificate is verified against.
    pub server_name: ServerName<'static>,
}

/// The system's trust store, read once per process.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        let _ = roots.add_parsable_certificates(found.certs);
        roots
    })
}

/// Compiles the TLS of a back end whose URL names `host` (an IPv6 literal in
/// brackets). Errors are (key, message); warnings are pushed.
pub fn compile(
    host: &str,
    settings: &ClientTlsSettings,
    warnings: &mut Vec<String>,
) -> Result<Arc<ClientTls>, (&'static str, String)> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let server_name = ServerName::try_from(bare.to_string()).map_err(|e| {
        (
            "url",
            format!("`{host}` is not a valid TLS server name: {e}"),
        )
    })?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ("url", e.to_string()))?;
    let builder = if settings.verify {
        let mut roots = system_roots().clone();
        if let Some(ca) = &settings.ca {
            add_roots(&mut roots, ca).map_err(|m| ("ca", m))?;
        }
        if roots.is_empty() {
            warnings.push(format!(
                "back end `https://{host}`: no trusted CA certificates (system store empty and no `ca`); its requests will get 502"
            ));
        }
        builder.with_root_certificates(roots)
    } else {
        if let Some(ca) = &settings.ca {
            load_certs(ca).map_err(|m| ("ca", m))?;
        }
        warnings.push(format!(
            "back end `https://{host}`: tls_verify = false, its certificate is not verified"
        ));
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider())))
    };
    let mut config = match (&settings.client_cert, &settings.client_key) {
        (Some(cert), Some(key)) => {
            // Loads both files and checks that the key belongs to the certificate.
            let chain = certified_key(cert, key)
                .map_err(|m| ("client_key", m))?
                .cert;
            let der = load_key(key).map_err(|m| ("client_key", m))?;
            if let Some(first) = chain.first() {
                warnings.extend(super::inspect::expiry_warning(
                    cert,
                    first,
                    super::server::unix_now(),
                    super::server::EXPIRY_WARNING_DAYS,
                ));
            }
            builder
                .with_client_auth_cert(chain, der)
                .map_err(|e| ("client_key", format!("`{key}`: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(("client_key", "`client_cert` needs a `client_key`".into())),
        (None, Some(_)) => {
            return Err(("client_cert", "`client_key` needs a `client_cert`".into()))
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(ClientTls {
        config: Arc::new(config),
        server_name,
    }))
}

/// Accepts any server certificate (`tls_verify = false`); the handshake's
/// signatures are still verified, so the peer holds the key it presents.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
