//! Certificate rotation without restart: one background thread looks at the
//! certificate and key files of every live TLS listener once a second (file
//! metadata: robust against editors and tools that save by rename), and when
//! a pair changed it loads it and swaps it into the listener's resolver. New
//! handshakes use the new certificate at once; established connections are
//! untouched. A pair that does not load (half written, key and certificate
//! not matching yet) keeps the old certificate and logs an error; it is tried
//! again at its next change.

use super::pem::certified_key;
use super::sni::SniResolver;
use crate::config::CertificateFiles;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;
use tracing::{error, info};

/// How often the files are looked at.
const POLL: Duration = Duration::from_secs(1);

/// What identifies a file's content without reading it.
type Stamp = Option<(i64, i64, u64, u64)>;

struct Watched {
    listener: String,
    resolver: Weak<SniResolver>,
    pairs: Vec<(CertificateFiles, [Stamp; 2])>,
}

static WATCHED: Mutex<Vec<Watched>> = Mutex::new(Vec::new());
static STARTED: Once = Once::new();

/// Starts watching a listener's certificate files for as long as `resolver` lives.
pub fn watch(listener: &str, resolver: &Arc<SniResolver>, pairs: &[CertificateFiles]) {
    let watched = Watched {
        listener: listener.to_string(),
        resolver: Arc::downgrade(resolver),
        pairs: pairs
            .iter()
            .map(|p| (p.clone(), [stamp(&p.cert), stamp(&p.key)]))
            .collect(),
    };
    WATCHED
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(watched);
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("portcullis-certs".into())
            .spawn(|| loop {
                std::thread::sleep(POLL);
                check_all();
            });
        if let Err(e) = spawned {
            error!(error = %e, "cannot start the certificate watcher: rotated certificates need a restart");
        }
    });
}

fn stamp(path: &str) -> Stamp {
    std::fs::metadata(path)
        .ok()
        .map(|m| (m.mtime(), m.mtime_nsec(), m.len(), m.ino()))
}

/// Reloads every pair whose files changed since they were last looked at.
fn check_all() {
    let mut watched = WATCHED.lock().unwrap_or_else(|p| p.into_inner());
    watched.retain(|w| w.resolver.strong_count() > 0);
    for entry in watched.iter_mut() {
        let Some(resolver) = entry.resolver.upgrade() else {
            continue;
        };
        for (index, (files, stamps)) in entry.pairs.iter_mut().enumerate() {
            let now = [stamp(&files.cert), stamp(&files.key)];
            if now == *stamps {
                continue;
            }
            *stamps = now;
            match certified_key(&files.cert, &files.key) {
                Ok(key) => {
                    resolver.replace(index, Arc::new(key));
                    info!(listener = %entry.listener, cert = %files.cert, "TLS certificate reloaded");
                }
                Err(e) => error!(
                    listener = %entry.listener,
                    cert = %files.cert,
                    error = %e,
                    "TLS certificate changed on disk but cannot be used; keeping the previous one"
                ),
            }
        }
    }
}
