//! The resolver thread: asks each back-end host name again when its answer
//! expires (the record TTL, clamped, or `[resolver] valid`, never later than
//! the back end's `resolve_interval`; `crate::snapshot::resolver`), and when
//! a name's addresses changed has the running configuration compiled again
//! with them ([`Reloader::refresh_names`]), so that each address is a server
//! and the servers follow the same path as on a reload.
//!
//! A thread of its own, not a worker (DNS here is blocking) and not the
//! health-check thread: a DNS server that does not answer holds this thread
//! for its timeout, and health checks must not wait behind it.

use crate::runtime::reload::Reloader;
use crate::snapshot::servers::monotonic_ms;
use crate::snapshot::SnapshotStore;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How often the thread looks for answers that expired.
const ROUND: Duration = Duration::from_millis(100);

/// Starts the resolver thread; it lives as long as the process.
pub fn spawn(reloader: Arc<Reloader>, store: SnapshotStore) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("portcullis-resolver".into())
        .spawn(move || {
            crate::service::threads::lower_thread_priority();
            let mut generation = 0;
            loop {
                round(&reloader, &store, &mut generation);
                std::thread::sleep(ROUND);
            }
        })
        .map(|_| ())
}

/// Asks the names whose answers expired; recompiles when some changed.
fn round(reloader: &Reloader, store: &SnapshotStore, generation: &mut u64) {
    let snapshot = store.load_full();
    if snapshot.generation != *generation {
        *generation = snapshot.generation;
        reloader.forget_names_except(&snapshot.host_names());
    }
    let mut changed = false;
    for (host, interval) in snapshot.names_to_watch() {
        let due = reloader.names.get(&host).map_or(0, |entry| entry.due_ms);
        if due > monotonic_ms() {
            continue;
        }
        match reloader
            .names
            .refresh(snapshot.resolver.as_ref(), &host, interval)
        {
            Ok(false) => {}
            Ok(true) => {
                let addresses = reloader.names.get(&host).map(|e| e.addrs);
                info!(host = %host, addresses = ?addresses.unwrap_or_default(), "back-end host resolved to other addresses");
                changed = true;
            }
            Err(error) => {
                warn!(host = %host, %error, "back-end host did not resolve; keeping its addresses");
            }
        }
    }
    if changed {
        reloader.refresh_names();
    }
}
