//! Active health checks, off the request path: one scheduling thread looks
//! for the checks that are due and runs each on a short-lived thread of its
//! own ([`crate::proxy::health_probe`]), so that a server that stalls until
//! its check's timeout delays no other server's check.
//! A server has at most one check under way at a time,
//! and at most [`MAX_IN_FLIGHT`] run at once; a due check that finds no room
//! waits for a later round. The result reaches every worker through the
//! server's health cell (`probe_up`). A server that fails `unhealthy` checks
//! in a row stops getting requests; `healthy` passes in a row bring it back;
//! both are audit lines.
//!
//! Each round reads the current snapshot, so servers a reload removes get no
//! new check from then on (one under way finishes), and servers it keeps
//! keep their state (their health cells outlive the snapshot). A server of a
//! back end without checks is always `probe_up`. Each address of a host
//! name is a server of its own and is checked on its own (names are
//! resolved again by the resolver thread, `crate::runtime::resolver`).

use crate::proxy::health_probe::{probe, record, ProbeTarget};
use crate::snapshot::servers::{monotonic_ms, ServerHealth};
use crate::snapshot::{BackendSpec, SnapshotStore};
use std::collections::HashSet;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// How often the scheduling thread looks for checks that are due.
const ROUND: Duration = Duration::from_millis(50);

/// Most checks under way at once.
pub const MAX_IN_FLIGHT: usize = 64;

/// Starts the health-check thread; it lives as long as the process.
pub fn spawn(store: SnapshotStore) -> std::io::Result<()> {
    let in_flight = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("portcullis-health".into())
        .spawn(move || loop {
            round(&store, &in_flight);
            std::thread::sleep(ROUND);
        })
        .map(|_| ())
}

/// Starts the checks that are due in the current snapshot.
fn round(store: &SnapshotStore, in_flight: &Arc<AtomicUsize>) {
    let snapshot = store.load_full();
    let mut seen = HashSet::new();
    for backend in snapshot.routes.iter().flat_map(|r| r.backend.each()) {
        let BackendSpec::Http(backend) = backend else {
            continue;
        };
        for server in &backend.servers {
            if !seen.insert(&*server.pool_key) {
                continue;
            }
            let Some(check) = &backend.health_check else {
                server.health.probe_up.store(true, Relaxed);
                continue;
            };
            let now = monotonic_ms();
            if server.health.next_probe.load(Relaxed) > now {
                continue;
            }
            let target = ProbeTarget {
                health: Arc::clone(&server.health),
                base: server.base().into(),
                backend: backend.label().into(),
                addrs: server.addr.into_iter().collect(),
                tls: server.tls_client.clone(),
                authority: backend.authority.clone(),
                check: check.clone(),
            };
            let started = start(
                &server.health,
                |h| &h.probing,
                in_flight,
                move || {
                    let passed = probe(&target);
                    record(&target, passed);
                },
            );
            if started {
                server
                    .health
                    .next_probe
                    .store(now + check.interval_ms, Relaxed);
            }
        }
    }
}

/// Which flag of a server's health cell marks its job as under way.
type BusyFlag = fn(&ServerHealth) -> &AtomicBool;

/// Runs `job` on a thread of its own unless `busy` of `health` says one for
/// the same server is under way, or [`MAX_IN_FLIGHT`] are; true when it
/// started.
fn start(
    health: &Arc<ServerHealth>,
    busy: BusyFlag,
    in_flight: &Arc<AtomicUsize>,
    job: impl FnOnce() + Send + 'static,
) -> bool {
    if in_flight.load(Relaxed) >= MAX_IN_FLIGHT {
        return false;
    }
    if busy(health)
        .compare_exchange(false, true, AcqRel, Relaxed)
        .is_err()
    {
        return false;
    }
    in_flight.fetch_add(1, Relaxed);
    let slot = Slot {
        in_flight: Arc::clone(in_flight),
        health: Arc::clone(health),
        busy,
    };
    let spawned = std::thread::Builder::new()
        .name("portcullis-check".into())
        .spawn(move || {
            let _slot = slot;
            job();
        });
    if let Err(e) = spawned {
        // The closure and its slot were dropped: count and flag are back.
        warn!(error = %e, "could not start a health-check thread; trying again next round");
        return false;
    }
    true
}

/// A job's place among [`MAX_IN_FLIGHT`] and its server's busy flag, both
/// given back when the job's thread ends (however it ends).
struct Slot {
    in_flight: Arc<AtomicUsize>,
    health: Arc<ServerHealth>,
    busy: BusyFlag,
}

impl Drop for Slot {
    fn drop(&mut self) {
        (self.busy)(&self.health).store(false, Release);
        self.in_flight.fetch_sub(1, Relaxed);
    }
}
