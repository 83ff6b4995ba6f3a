//! A listener's TLS: the rustls server config (TLS 1.2 and 1.3, ALPN
//! `http/1.1`, optional client certificates) and the SNI resolver that picks a
//! certificate by exact or wildcard name, the first as the default.
//!
//! Compiled with the snapshot. A listener whose TLS settings did not change
//! across a config reload keeps its compiled [`ServerTls`] (so its session
//! cache, ticket keys and rotated certificates carry over); certificate files
//! that change on disk are picked up by [`super::rotation`].

use super::pem::{certified_key, load_roots, provider};
use super::sni::{CertSet, SniResolver};
use crate::config::{CertificateFiles, ListenerTls};
use rustls::server::WebPkiClientVerifier;
use rustls::ServerConfig;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// Sessions remembered per listener for TLS 1.2 resumption by id.
const SESSION_CACHE: usize = 4096;

/// A listener's compiled TLS.
#[derive(Debug)]
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub handshake_timeout: Duration,
    pub resolver: Arc<SniResolver>,
    /// Listener name and settings: equal fingerprints mean the same TLS.
    fingerprint: String,
}

impl PartialEq for ServerTls {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl Eq for ServerTls {}

/// Certificates expiring within this many days are warned about.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl ServerTls {
    /// Warnings for the certificates in use that expire within
    /// [`EXPIRY_WARNING_DAYS`] (`files` as configured, in the same order).
    pub fn expiry_warnings(&self, files: &[CertificateFiles], warnings: &mut Vec<String>) {
        let set = self.resolver.current();
        for (key, files) in set.keys().iter().zip(files) {
            if let Some(cert) = key.cert.first() {
                warnings.extend(super::inspect::expiry_warning(
                    &files.cert,
                    cert,
                    unix_now(),
                    EXPIRY_WARNING_DAYS,
                ));
            }
        }
    }
}

/// Compiled listener TLS still in use, for reuse by the next snapshot.
static LIVE: Mutex<Vec<Weak<ServerTls>>> = Mutex::new(Vec::new());

/// Compiles a listener's TLS settings. Every file is read and checked (so a
/// reload or `check` reports a bad file); when a live config with the same
/// settings exists it is returned instead of a new one. Errors are (key
/// under `tls`, message).
pub fn compile(listener: &str, tls: &ListenerTls) -> Result<Arc<ServerTls>, (String, String)> {
    if tls.certificates.is_empty() {
        return Err((
            "certificates".into(),
            "a TLS listener needs at least one certificate".into(),
        ));
    }
    let handshake_timeout = crate::config::seconds(tls.handshake_timeout).ok_or((
        "handshake_timeout".to_string(),
        "must be a positive number of seconds".to_string(),
    ))?;
    let mut keys = Vec::with_capacity(tls.certificates.len());
    for (i, pair) in tls.certificates.iter().enumerate() {
        let key = certified_key(&pair.cert, &pair.key)
            .map_err(|message| (format!("certificates[{i}].cert"), message))?;
        keys.push(Arc::new(key));
    }
    let client_roots = match &tls.client_auth {
        Some(auth) => {
            Some(load_roots(&auth.ca).map_err(|message| ("client_auth.ca".to_string(), message))?)
        }
        None => None,
    };
    let fingerprint = fingerprint(listener, tls);
    let mut live = LIVE.lock().unwrap_or_else(|p| p.into_inner());
    live.retain(|w| w.strong_count() > 0);
    if let Some(existing) = live
        .iter()
        .filter_map(Weak::upgrade)
        .find(|t| t.fingerprint == fingerprint)
    {
        return Ok(existing);
    }
    let resolver = Arc::new(SniResolver::new(CertSet::new(keys)));
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ("certificates".to_string(), e.to_string()))?;
    let builder = match (client_roots, &tls.client_auth) {
        (Some(roots), Some(auth)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if auth.required {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| ("client_auth.ca".to_string(), e.to_string()))?,
            )
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
    config.ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| ("certificates".to_string(), e.to_string()))?;
    let compiled = Arc::new(ServerTls {
        config: Arc::new(config),
        handshake_timeout,
        resolver: Arc::clone(&resolver),
        fingerprint,
    });
    super::rotation::watch(listener, &resolver, &tls.certificates);
    live.push(Arc::downgrade(&compiled));
    Ok(compiled)
}

/// The listener name and every TLS setting, with the CA file's modification
/// time (a changed CA bundle gives a new config at the next reload).
fn fingerprint(listener: &str, tls: &ListenerTls) -> String {
    use std::fmt::Write;
    let mut print = format!("{listener}|{}", tls.handshake_timeout);
    for pair in &tls.certificates {
        let _ = write!(print, "|{}|{}", pair.cert, pair.key);
    }
    if let Some(auth) = &tls.client_auth {
        let modified = std::fs::metadata(&auth.ca)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let _ = write!(print, "|ca={}@{modified}|{}", auth.ca, auth.required);
    }
    print
}
