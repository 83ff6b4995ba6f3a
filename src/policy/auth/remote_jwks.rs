//! A remote JWKS: fetched over HTTPS by a background thread, cached, and
//! refreshed every `max_cache_duration` (sooner, every
//! [`RETRY_AFTER_FAILURE`], while fetches fail). The request path only reads
//! the cached key set through an `ArcSwap`; it never waits for a fetch.
//!
//! A token whose `kid` the cached keys lack asks for an early refresh
//! ([`RemoteJwks::request_refresh`]): the fetcher refetches at once, but no
//! sooner than [`MIN_EARLY_REFRESH`] after its last fetch, so tokens with
//! made-up kids cannot turn into a flood of fetches. The token itself is
//! still refused; the next one with that kid finds the new key.
//!
//! Snapshots that name the same URL (and CA) share one fetcher, so a reload
//! does not refetch; the thread ends once no snapshot holds its keys. Until the
//! first fetch succeeds there are no keys and every token is refused (401).

use super::keys::KeySet;
use arc_swap::ArcSwapOption;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Wait before retrying a failed fetch (or the refresh period, if shorter).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// Shortest time between a fetch and an early refresh asked for by an unknown kid.
pub const MIN_EARLY_REFRESH: Duration = Duration::from_secs(5);
/// Longest wait for one fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: u64 = 1 << 20;

/// What identifies a fetcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    pub uri: String,
    /// PEM file of the CAs to trust; None: the public web roots.
    pub ca_file: Option<PathBuf>,
    pub refresh: Duration,
}

/// The cached keys of one remote JWKS.
#[derive(Debug)]
pub struct RemoteJwks {
    pub spec: RemoteSpec,
    keys: ArcSwapOption<KeySet>,
    /// Set by a token with an unknown kid; shared with the fetcher thread.
    refresh_wanted: Arc<AtomicBool>,
}

impl RemoteJwks {
    /// The keys of the last successful fetch, if any.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    /// Asks the fetcher to refetch soon (see [`MIN_EARLY_REFRESH`]); never waits.
    pub fn request_refresh(&self) {
        self.refresh_wanted.store(true, Ordering::Relaxed);
    }
}

static FETCHERS: Mutex<Vec<Weak<RemoteJwks>>> = Mutex::new(Vec::new());

/// The shared fetcher for `spec`, started if none is running. Fails only when
/// the HTTPS client cannot be built (e.g. an unreadable `ca_file`).
pub fn fetcher(spec: RemoteSpec) -> Result<Arc<RemoteJwks>, String> {
    let mut fetchers = FETCHERS.lock().unwrap_or_else(|p| p.into_inner());
    fetchers.retain(|w| w.strong_count() > 0);
    if let Some(existing) = fetchers
        .iter()
        .filter_map(Weak::upgrade)
        .find(|f| f.spec == spec)
    {
        return Ok(existing);
    }
    let agent = agent(spec.ca_file.as_deref())?;
    let refresh_wanted = Arc::new(AtomicBool::new(false));
    let remote = Arc::new(RemoteJwks {
        spec,
        keys: ArcSwapOption::empty(),
        refresh_wanted: refresh_wanted.clone(),
    });
    fetchers.push(Arc::downgrade(&remote));
    let weak = Arc::downgrade(&remote);
    std::thread::Builder::new()
        .name("portcullis-jwks".into())
        .spawn(move || refresh_loop(weak, agent, &refresh_wanted))
        .map_err(|e| format!("cannot start the JWKS fetcher: {e}"))?;
    Ok(remote)
}

fn refresh_loop(remote: Weak<RemoteJwks>, agent: ureq::Agent, refresh_wanted: &AtomicBool) {
    loop {
        let Some(strong) = remote.upgrade() else {
            return;
        };
        let spec = strong.spec.clone();
        let fetched_at = Instant::now();
        refresh_wanted.store(false, Ordering::Relaxed);
        let wait = match fetch(&agent, &spec.uri) {
            Ok((keys, notes)) => {
                for note in notes {
                    warn!(uri = %spec.uri, "{note}");
                }
                info!(uri = %spec.uri, keys = keys.len(), "JWKS fetched");
                strong.keys.store(Some(Arc::new(keys)));
                spec.refresh
            }
            Err(error) => {
                warn!(uri = %spec.uri, %error, "JWKS fetch failed; keeping the keys already held");
                spec.refresh.min(RETRY_AFTER_FAILURE)
            }
        };
        drop(strong);
        // Sleep in short steps so the thread ends soon after its last user
        // and an early refresh is not kept waiting.
        let until = fetched_at + wait;
        while Instant::now() < until {
            if remote.strong_count() == 0 {
                return;
            }
            if refresh_wanted.load(Ordering::Relaxed) && fetched_at.elapsed() >= MIN_EARLY_REFRESH {
                break;
            }
            std::thread::sleep(Duration::from_millis(200).min(wait));
        }
    }
}

fn fetch(agent: &ureq::Agent, uri: &str) -> Result<(KeySet, Vec<String>), String> {
    let mut response = agent.get(uri).call().map_err(|e| e.to_string())?;
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_JWKS_BYTES)
        .read_to_string()
        .map_err(|e| format!("reading the body: {e}"))?;
    let mut keys = KeySet::default();
    let notes = keys.add_jwks(&text)?;
    Ok((keys, notes))
}

/// An HTTPS client trusting `ca_file` (or the public web roots).
fn agent(ca_file: Option<&std::path::Path>) -> Result<ureq::Agent, String> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder();
    if let Some(path) = ca_file {
        let path = path.to_string_lossy();
        // Checked as a trust store first, for the same errors as everywhere else.
        crate::tls::pem::load_roots(&path).map_err(|e| format!("ca_file: {e}"))?;
        let certs = crate::tls::pem::load_certs(&path).map_err(|e| format!("ca_file: {e}"))?;
        let roots = certs
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
    }
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .https_only(true)
        .tls_config(tls.build())
        .build();
    Ok(config.new_agent())
}
