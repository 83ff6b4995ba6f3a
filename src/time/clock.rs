//! The clock limits are counted on: one monotonic origin for the whole
//! process (every worker's buckets share `tat` values, so they must share the
//! clock), plus the UTC second quotas' calendar needs, read from the wall
//! clock each time (so a clock set right after start is followed). Read once
//! per limited request, never for requests without limits.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A moment, as the limiters see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Nanoseconds on the process's monotonic clock (never 0 in practice).
    pub mono_ns: u64,
    /// Unix seconds (UTC).
    pub unix_secs: i64,
}

struct Origin {
    instant: Instant,
}

static ORIGIN: OnceLock<Origin> = OnceLock::new();

/// Buckets start full: their state 0 lies this far in the past.
const OFFSET_NS: u64 = 1 << 40;

/// The current moment.
pub fn now() -> Now {
    Now {
        mono_ns: mono_ns(),
        unix_secs: unix_secs(),
    }
}

/// Nanoseconds on the process's monotonic clock (what buckets count on).
pub fn mono_ns() -> u64 {
    let origin = ORIGIN.get_or_init(|| Origin {
        instant: Instant::now(),
    });
    origin.instant.elapsed().as_nanos() as u64 + OFFSET_NS
}

/// Unix seconds from the wall clock (what quota calendars count on).
pub fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
