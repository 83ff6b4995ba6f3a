//! Choosing a listener's certificate by the name the client asks for (SNI):
//! exact name, then a wildcard one label up, then the first certificate. The
//! set is swapped whole when a certificate file rotates.

use super::inspect::dns_names;
use ahash::AHashMap;
use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// Certificates by name.
#[derive(Debug, Default)]
pub struct CertSet {
    keys: Vec<Arc<CertifiedKey>>,
    exact: AHashMap<String, usize>,
    /// `*.example.com` stored as `example.com`.
    wildcard: AHashMap<String, usize>,
}

impl CertSet {
    pub fn new(keys: Vec<Arc<CertifiedKey>>) -> Self {
        let mut set = CertSet {
            keys,
            ..CertSet::default()
        };
        for (index, key) in set.keys.iter().enumerate() {
            let Some(cert) = key.cert.first() else {
                continue;
            };
            for name in dns_names(cert) {
                match name.strip_prefix("*.") {
                    Some(parent) => set.wildcard.entry(parent.to_string()).or_insert(index),
                    None => set.exact.entry(name).or_insert(index),
                };
            }
        }
        set
    }

    /// The certificate for `server_name`: exact name, then a wildcard one
    /// label up, then the default (the first).
    pub fn pick(&self, server_name: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let found = server_name.and_then(|name| {
            let name = name.to_ascii_lowercase();
            self.exact.get(&name).copied().or_else(|| {
                name.split_once('.')
                    .and_then(|(_, parent)| self.wildcard.get(parent).copied())
            })
        });
        self.keys.get(found.unwrap_or(0))
    }

    pub fn keys(&self) -> &[Arc<CertifiedKey>] {
        &self.keys
    }
}

/// Picks a listener's certificate by SNI; swapped whole when a file rotates.
#[derive(Debug)]
pub struct SniResolver {
    current: ArcSwap<CertSet>,
}

impl SniResolver {
    pub fn new(set: CertSet) -> Self {
        SniResolver {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// The certificates now in use.
    pub fn current(&self) -> Arc<CertSet> {
        self.current.load_full()
    }

    /// Replaces the certificate at `index` (new handshakes use it at once).
    pub fn replace(&self, index: usize, key: Arc<CertifiedKey>) {
        let mut keys = self.current.load().keys.clone();
        if let Some(slot) = keys.get_mut(index) {
            *slot = key;
            self.current.store(Arc::new(CertSet::new(keys)));
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load().pick(hello.server_name()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::pem::provider;

    fn set_with(names: &[&[&str]]) -> CertSet {
        let provider = provider();
        let keys = names
            .iter()
            .map(|names| {
                let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
                let cert = rcgen::generate_simple_self_signed(names).unwrap();
                let der =
                    rustls_pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
                Arc::new(
                    CertifiedKey::from_der(vec![cert.cert.der().clone()], der, &provider).unwrap(),
                )
            })
            .collect();
        CertSet::new(keys)
    }

    fn index(set: &CertSet, name: Option<&str>) -> usize {
        let picked = set.pick(name).unwrap();
        set.keys()
            .iter()
            .position(|k| Arc::ptr_eq(k, picked))
            .unwrap()
    }

    // SNI picks the exact name first, then a wildcard one label up, else the first.
    #[test]
    fn sni_exact_then_wildcard_then_default() {
        let set = set_with(&[
            &["default.test"],
            &["*.example.test"],
            &["api.example.test"],
        ]);
        assert_eq!(
            [
                Some("api.example.test"),
                Some("WWW.example.test"),
                Some("a.b.example.test"),
                None
            ]
            .map(|n| index(&set, n)),
            [2, 1, 0, 0]
        );
    }
}
