//! Per-worker pool of idle keep-alive upstream connections, keyed by the back
//! end's `scheme://host:port` so that pools outlive config reloads that keep
//! the back end.
//!
//! LIFO: the most recently used connection is reused first (warm, least likely
//! to have been closed by the back end); connections idle longer than the
//! configured timeout are dropped instead of reused, and so are connections
//! the back end closed or sent stray bytes on while idle
//! ([`crate::io::socket_handle::SocketHandle`]). `!Send` on purpose: one
//! pool per worker, no locks.

use crate::io::buffered::BufferedStream;
use crate::io::socket_handle::IdleState;
use crate::time::deadline::Tick;
use ahash::AHashMap;
use std::cell::RefCell;

/// Read-buffer capacity of an upstream connection.
pub const UPSTREAM_READ_CAPACITY: usize = 16 * 1024;

struct Idle {
    conn: BufferedStream,
    since: Tick,
}

/// Idle upstream connections of one worker.
#[derive(Default)]
pub struct UpstreamPool {
    idle: RefCell<AHashMap<Box<str>, Vec<Idle>>>,
    /// New back-end sockets are non-blocking (the epoll driver).
    nonblocking_sockets: bool,
}

impl UpstreamPool {
    /// A pool for a worker on the epoll driver (`nonblocking_sockets`) or on io_uring.
    pub fn new(nonblocking_sockets: bool) -> Self {
        UpstreamPool {
            idle: RefCell::default(),
            nonblocking_sockets,
        }
    }

    /// Whether new back-end sockets must be non-blocking.
    pub fn nonblocking_sockets(&self) -> bool {
        self.nonblocking_sockets
    }

    /// The freshest idle connection to `key` idle for fewer than `max_idle` ticks.
    pub fn checkout(&self, key: &str, max_idle: Tick, now: Tick) -> Option<BufferedStream> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(key)?;
        while let Some(entry) = list.pop() {
            if now.saturating_sub(entry.since) >= max_idle {
                continue;
            }
            let state = entry
                .conn
                .handle
                .as_ref()
                .map_or(IdleState::Clean, |handle| handle.idle_state());
            match state {
                IdleState::Clean => return Some(entry.conn),
                IdleState::Closed => {}
                IdleState::StrayBytes => {
                    tracing::warn!(
                        backend = key,
                        "back end sent bytes on an idle keep-alive connection; closed it"
                    );
                }
            }
        }
        None
    }

    /// Keeps `conn` for reuse if fewer than `max_per_key` are idle for `key`;
    /// connections at the bottom of the stack older than `max_idle` are closed.
    pub fn checkin(
        &self,
        key: &str,
        conn: BufferedStream,
        max_per_key: usize,
        max_idle: Tick,
        now: Tick,
    ) {
        let mut idle = self.idle.borrow_mut();
        let list = match idle.get_mut(key) {
            Some(list) => list,
            None => idle.entry(key.into()).or_default(),
        };
        let stale = |e: &Idle| now.saturating_sub(e.since) >= max_idle;
        if list.first().is_some_and(stale) {
            list.retain(|e| !stale(e));
        }
        if list.len() < max_per_key {
            list.push(Idle { conn, since: now });
        }
    }
}
