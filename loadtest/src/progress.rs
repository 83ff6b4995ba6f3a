//! The progress line: once per second on stderr, requests done so far, the
//! rate over the last second, and errors. Load threads bump their own
//! counters (one cache line each); this thread only reads them.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One load thread's running counts, padded to its own cache line.
#[derive(Default)]
#[repr(align(64))]
pub struct Counters {
    pub done: AtomicU64,
    pub errors: AtomicU64,
}

/// Prints a line per second until `finished` is set.
pub fn report(counters: Arc<Vec<Counters>>, finished: Arc<AtomicBool>, start: Instant) {
    let mut last = 0u64;
    let mut next = start + Duration::from_secs(1);
    while !finished.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        let done: u64 = counters
            .iter()
            .map(|c| c.done.load(Ordering::Relaxed))
            .sum();
        let errors: u64 = counters
            .iter()
            .map(|c| c.errors.load(Ordering::Relaxed))
            .sum();
        let _ = writeln!(
            std::io::stderr(),
            "[{:>4}s] {done} requests, {} req/s, {errors} errors",
            (next - start).as_secs(),
            done - last
        );
        last = done;
        next += Duration::from_secs(1);
    }
}
