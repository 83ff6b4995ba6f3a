//! Reading PEM files: certificate chains, CA bundles and private keys (RSA or
//! ECDSA; PKCS#8, PKCS#1 or SEC1), with errors that name the file and say
//! what is wrong. Used when a snapshot is compiled and when a rotated
//! certificate is reloaded; never on the request path.

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// The crypto provider of every TLS config the gateway builds (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file, in order; at least one.
pub fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = read(path)?;
    let certs = rustls_pemfile::certs(&mut &bytes[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{path}`: invalid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("`{path}` holds no PEM certificate"));
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = read(path)?;
    match rustls_pemfile::private_key(&mut &bytes[..]) {
        Ok(Some(key)) => Ok(key),
        Ok(None) => Err(format!(
            "`{path}` holds no PEM private key (PKCS#8, RSA or EC)"
        )),
        Err(e) => Err(format!("`{path}`: invalid PEM: {e}")),
    }
}

/// A certificate chain with its signing key, checked to belong together.
pub fn certified_key(cert: &str, key: &str) -> Result<CertifiedKey, String> {
    let chain = load_certs(cert)?;
    let der = load_key(key)?;
    CertifiedKey::from_der(chain, der, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            format!("the key in `{key}` does not match the certificate in `{cert}`")
        }
        other => format!("`{key}` cannot be used with `{cert}`: {other}"),
    })
}

/// A trust store holding every certificate of a PEM CA bundle.
pub fn load_roots(path: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    add_roots(&mut roots, path)?;
    Ok(roots)
}

/// Adds every certificate of a PEM CA bundle to `roots`.
pub fn add_roots(roots: &mut RootCertStore, path: &str) -> Result<(), String> {
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("`{path}`: not a usable CA certificate: {e}"))?;
    }
    Ok(())
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(Path::new(path)).map_err(|e| format!("cannot read `{path}`: {e}"))
}
