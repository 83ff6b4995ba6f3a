//! Circuit breaking: the requests in flight to a back end and to each of its
//! servers, all workers together, against `max_requests` and
//! `max_requests_per_server`. A request beyond a cap is answered 503 with
//! `Retry-After` at once instead of queueing behind a saturated back end.
//! The server count is also the `active` metric; the back-end count is kept
//! only when a cap is set.

use super::balance::{Slot, WorkerBalance};
use super::ForwardError;
use crate::snapshot::HttpBackendSpec;
use std::sync::atomic::Ordering::Relaxed;

/// A request counted against its back end's cap; uncounted on drop.
pub struct BackendEntry<'a> {
    backend: &'a HttpBackendSpec,
}

/// Counts a request against the back end's cap, or refuses it (503).
pub fn enter_backend(backend: &HttpBackendSpec) -> Result<BackendEntry<'_>, ForwardError> {
    if backend.max_requests != u32::MAX
        && backend.active.fetch_add(1, Relaxed) >= backend.max_requests
    {
        backend.active.fetch_sub(1, Relaxed);
        return Err(ForwardError::upstream(503, "back end at its request limit"));
    }
    Ok(BackendEntry { backend })
}

impl Drop for BackendEntry<'_> {
    fn drop(&mut self) {
        if self.backend.max_requests != u32::MAX {
            self.backend.active.fetch_sub(1, Relaxed);
        }
    }
}

/// A try in flight to one server; uncounted (here and in the worker's
/// balancing state) on drop.
pub struct ServerEntry<'a> {
    backend: &'a HttpBackendSpec,
    balance: &'a WorkerBalance,
    slot: Slot,
    pub index: usize,
}

/// Counts a try to server `index` (picked by the balancer).
pub fn enter_server<'a>(
    balance: &'a WorkerBalance,
    slot: Slot,
    backend: &'a HttpBackendSpec,
    index: usize,
) -> ServerEntry<'a> {
    backend.servers[index].health.active.fetch_add(1, Relaxed);
    ServerEntry {
        backend,
        balance,
        slot,
        index,
    }
}

impl Drop for ServerEntry<'_> {
    fn drop(&mut self) {
        self.backend.servers[self.index]
            .health
            .active
            .fetch_sub(1, Relaxed);
        self.balance.done(self.slot, self.backend, self.index);
    }
}
