//! Requests per subscriber, counted by each worker on its own: the request
//! path adds one to a plain counter in the worker's [`RequestTally`]; the
//! worker's periodic tick ([`RequestTally::flush`], every 50 ms, and once more
//! when it stops) adds what it counted into the subscriber's shared total
//! ([`SubscriberSpec::requests`](super::SubscriberSpec), the one `/usage` and
//! `/metrics` read, carried across reloads by `registry.rs`).
//!
//! So a busy subscriber's shared counter is touched a few times per worker per
//! tick (taking a reference to it, the `fetch_add` of the flush, letting go of
//! the reference) instead of once per request by every core: no cache line
//! goes from core to core with each request. Readers see every request once
//! the workers' ticks have run (at most one tick late).
//!
//! A tally belongs to one compiled set of usage plans (its generation): the
//! first request counted under a reload's plans flushes what was counted
//! under the previous ones into their counters first. A subscriber kept by the
//! reload has the same shared counter in both, so nothing is lost; one the
//! reload removed has its last counts added to a counter nobody reads any more,
//! as before. Must not block, allocate per request or touch another worker's
//! state.

use super::UsageSpec;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One worker's counts per subscriber since its last flush (`!Sync`: only its
/// worker touches it).
#[derive(Debug, Default)]
pub struct RequestTally {
    counts: RefCell<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// The usage plans the counts below were made under (0: none yet).
    generation: u64,
    /// By subscriber index: 1 + the subscriber's place in `pending`, or 0.
    place: Vec<u32>,
    /// Subscribers counted since the last flush: (index, shared total, count).
    pending: Vec<(u32, Arc<AtomicU64>, u64)>,
}

impl Counts {
    /// Counts a subscriber not counted since the last flush, or the first
    /// request under another set of plans (whose counts are flushed first).
    #[cold]
    #[inline(never)]
    fn first_count(&mut self, usage: &UsageSpec, subscriber: u32) {
        if self.generation != usage.generation() || self.place.len() != usage.subscribers.len() {
            self.flush();
            self.generation = usage.generation();
            self.place.clear();
            self.place.resize(usage.subscribers.len(), 0);
        }
        let (Some(place), Some(spec)) = (
            self.place.get_mut(subscriber as usize),
            usage.subscribers.get(subscriber as usize),
        ) else {
            return;
        };
        match self.pending.get_mut((*place as usize).wrapping_sub(1)) {
            Some(entry) => entry.2 += 1,
            None => {
                self.pending
                    .push((subscriber, Arc::clone(&spec.requests), 1));
                *place = self.pending.len() as u32;
            }
        }
    }

    /// Adds every pending count into its shared total and forgets it.
    fn flush(&mut self) {
        for (index, total, count) in self.pending.drain(..) {
            total.fetch_add(count, Ordering::Relaxed);
            if let Some(place) = self.place.get_mut(index as usize) {
                *place = 0;
            }
        }
    }
}

impl RequestTally {
    /// Counts one request that presented a token of `subscriber` (an index
    /// into `usage.subscribers`; one out of range is not counted). The usual
    /// case, a subscriber already counted since the last flush under the same
    /// plans, is one add; the rest is out of line.
    #[inline]
    pub fn count(&self, usage: &UsageSpec, subscriber: u32) {
        let mut counts = self.counts.borrow_mut();
        if counts.generation == usage.generation() && counts.place.len() == usage.subscribers.len()
        {
            let place = counts.place.get(subscriber as usize).copied();
            let at = place.map_or(usize::MAX, |p| (p as usize).wrapping_sub(1));
            if let Some(entry) = counts.pending.get_mut(at) {
                entry.2 += 1;
                return;
            }
        }
        counts.first_count(usage, subscriber);
    }

    /// Adds what this worker counted since its last flush into the shared
    /// totals (the worker's tick; never on the request path).
    pub fn flush(&self) {
        self.counts.borrow_mut().flush();
    }
}

#[cfg(test)]
#[path = "request_tally_tests.rs"]
mod tests;
