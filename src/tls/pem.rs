//! Reading PEM files: certificate chains, CA bundles and private keys (RSA or
//! ECDSA; PKCS#8, PKCS#1 or SEC1), with errors that name the file and say
//! what is wrong. Used when a snapshot is compiled and when a rotated
//! certificate is reloaded; never on the request path.

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
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
    let certs = CertificateDer::pem_slice_iter(&bytes)
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
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    // RSA keys in PKCS#1 and ECDSA keys in SEC1 load with their certificates.
    #[test]
    fn pkcs1_rsa_and_sec1_ec_keys_load() {
        let rsa = certified_key(&fixture("rsa-cert.pem"), &fixture("rsa-pkcs1-key.pem"));
        let ec = certified_key(&fixture("ec-cert.pem"), &fixture("ec-sec1-key.pem"));
        assert_eq!((rsa.is_ok(), ec.is_ok()), (true, true), "{rsa:?} {ec:?}");
    }

    // A key that belongs to another certificate is refused, naming both files.
    #[test]
    fn mismatched_key_refused() {
        let error = certified_key(&fixture("rsa-cert.pem"), &fixture("ec-sec1-key.pem"))
            .err()
            .unwrap_or_default();
        assert!(error.contains("does not match"), "{error}");
    }

    // A file without a certificate says so.
    #[test]
    fn key_file_is_not_a_certificate() {
        let error = load_certs(&fixture("ec-sec1-key.pem"))
            .err()
            .unwrap_or_default();
        assert!(error.contains("no PEM certificate"), "{error}");
    }
}
