//! The rate limiter's per-request cost. `uncontended`: one worker spending
//! tokens from its lease (the common path: no atomic), with a lease renewed
//! from the shared bucket every batch. `contended`: two threads spending from
//! one shared bucket at once (each with its own leases), so the compare-and-swap
//! on the shared `tat` is fought over. `quota_count`: one exact quota count
//! (one compare-and-swap). The target: the uncontended check under 50 ns.

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::config::{OnBreach, QuotaPeriod};
use portcullis::policy::usage::{LocalShares, QuotaCounter, QuotaParams, RateParams, SharedBucket};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A limit high enough never to refuse, so every call measures the admit path.
fn params() -> RateParams {
    RateParams::new(1e9, Some(1_000_000)).expect("valid rate")
}

fn uncontended(c: &mut Criterion) {
    let p = params();
    let bucket = SharedBucket::default();
    let local = LocalShares::default();
    let origin = Instant::now();
    c.bench_function("limiter/uncontended_take", |b| {
        b.iter(|| {
            let now = origin.elapsed().as_nanos() as u64 + (1 << 40);
            black_box(local.take_from(black_box(&bucket), &p, now))
        })
    });
    c.bench_function("limiter/uncontended_take_fixed_clock", |b| {
        let mut now = 1u64 << 40;
        b.iter(|| {
            now += 1;
            black_box(local.take_from(black_box(&bucket), &p, now))
        })
    });
}

fn contended(c: &mut Criterion) {
    let p = params();
    let bucket = Arc::new(SharedBucket::default());
    let stop = Arc::new(AtomicBool::new(false));
    let rival_calls = Arc::new(AtomicU64::new(0));
    let rival_running = Arc::new(AtomicBool::new(false));
    let origin = Instant::now();
    // A second thread spends from the same bucket for the whole benchmark.
    let rival = {
        let (bucket, stop, calls) = (bucket.clone(), stop.clone(), rival_calls.clone());
        let running = rival_running.clone();
        std::thread::spawn(move || {
            let local = LocalShares::default();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let now = origin.elapsed().as_nanos() as u64 + (1 << 40);
                let _ = local.take_from(&bucket, &p, now);
                n += 1;
                running.store(true, Ordering::Relaxed);
            }
            calls.store(n, Ordering::Relaxed);
        })
    };
    while !rival_running.load(Ordering::Relaxed) {
        std::hint::spin_loop();
    }
    let local = LocalShares::default();
    c.bench_function("limiter/contended_take_two_threads", |b| {
        b.iter(|| {
            let now = origin.elapsed().as_nanos() as u64 + (1 << 40);
            black_box(local.take_from(black_box(&bucket), &p, now))
        })
    });
    stop.store(true, Ordering::Relaxed);
    let _ = rival.join();
    assert!(
        rival_calls.load(Ordering::Relaxed) > 0,
        "the rival thread never ran"
    );
}

fn quota(c: &mut Criterion) {
    let counter = QuotaCounter::default();
    let q = QuotaParams {
        limit: u64::MAX >> 30,
        period: QuotaPeriod::Day,
        on_breach: OnBreach::Reject,
    };
    c.bench_function("limiter/quota_count", |b| {
        b.iter(|| black_box(counter.count(black_box(&q), 1_800_000_000)))
    });
}

criterion_group!(benches, uncontended, contended, quota);
criterion_main!(benches);
