//! Per-worker pool of idle keep-alive upstream connections, keyed by the back
//! end's `scheme://host:port` so that pools outlive config reloads that keep
//! the back end.
//!
//! LIFO: the most recently used connection is reused first (warm, least likely
//! to have been closed by the back end); connections idle longer than the
//! configured timeout are dropped instead of reused. `!Send` on purpose: one
//! pool per worker, no locks.

use crate::buffered::BufferedStream;
use ahash::AHashMap;
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Read-buffer capacity of an upstream connection.
pub const UPSTREAM_READ_CAPACITY: usize = 16 * 1024;

struct Idle {
    conn: BufferedStream,
    since: Instant,
}

/// Idle upstream connections of one worker.
#[derive(Default)]
pub struct UpstreamPool {
    idle: RefCell<AHashMap<Box<str>, Vec<Idle>>>,
}

impl UpstreamPool {
    /// The freshest idle connection to `key` not older than `max_idle`.
    pub fn checkout(&self, key: &str, max_idle: Duration, now: Instant) -> Option<BufferedStream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(key)?;
        while let Some(entry) = list.pop() {
            if now.saturating_duration_since(entry.since) < max_idle {
                return Some(entry.conn);
            }
        }
        None
    }

    /// Keeps `conn` for reuse if fewer than `max_per_key` are idle for `key`.
    pub fn checkin(&self, key: &str, conn: BufferedStream, max_per_key: usize, now: Instant) {
        let mut idle = self.idle.borrow_mut();
        let list = match idle.get_mut(key) {
            Some(list) => list,
            None => idle.entry(key.into()).or_default(),
        };
        if list.len() >= max_per_key {
            return;
        }
        if list.len() == max_per_key.saturating_sub(1) || list.len() % 16 == 15 {
            list.retain(|e| now.saturating_duration_since(e.since) < Duration::from_secs(3600));
        }
        list.push(Idle { conn, since: now });
    }

    /// Idle connections currently held, for all back ends.
    pub fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }
}
