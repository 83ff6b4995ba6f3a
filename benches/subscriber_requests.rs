//! The per-request cost of counting a subscriber's requests. `tally_*`: what
//! a worker does now, one plain add in its own `RequestTally` (a worker's tick
//! adds the count to the shared total every 50 ms, outside the measured
//! loop). `shared_fetch_add_*`: what every worker did before, a `fetch_add`
//! on the subscriber's counter shared by all workers. `*_alone`: one thread;
//! `*_with_rival`: a second thread counts the same subscriber meanwhile, its
//! own way (a shared counter's cache line then moves between the two cores).

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis::policy::usage::{compile_usage, RequestTally, UsageSpec};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// One subscriber, `acme`, entitled to deployment `d`.
const CONFIG: &str = "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n[[deployments]]\nname = \"d\"\nlistener = \"l\"\nusage_plans = { token_locations = [\"header:X-Token\"] }\n[[deployments.routes]]\npath = \"/\"\nbackend = { type = \"stock\", status = 200 }\n[[usage_plans]]\nname = \"p\"\n[[usage_plans.entitlements]]\nname = \"e\"\ndeployments = [\"d\"]\n[[subscribers]]\nname = \"acme\"\nusage_plans = [\"p\"]\nclients = [{ name = \"c\", token = \"0123456789abcdef\" }]\n";

fn plans() -> Arc<UsageSpec> {
    let config = portcullis::config::parse_str(CONFIG, Path::new("bench.toml")).expect("parses");
    Arc::new(compile_usage(&config, &["d"], &mut Vec::new()).expect("compiles"))
}

/// Runs `rival` on another thread until `bench` returns; asserts it ran.
fn with_rival(rival: impl FnMut() + Send + 'static, bench: impl FnOnce()) {
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let thread = {
        let (stop, calls) = (Arc::clone(&stop), Arc::clone(&calls));
        let mut rival = rival;
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                rival();
                calls.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while calls.load(Ordering::Relaxed) == 0 {
        std::hint::spin_loop();
    }
    bench();
    stop.store(true, Ordering::Relaxed);
    let _ = thread.join();
}

fn alone(c: &mut Criterion) {
    let usage = plans();
    let tally = RequestTally::default();
    c.bench_function("subscriber_requests/tally_alone", |b| {
        b.iter(|| tally.count(black_box(&usage), black_box(0)))
    });
    tally.flush();
    let shared = &usage.subscribers[0].requests;
    c.bench_function("subscriber_requests/shared_fetch_add_alone", |b| {
        b.iter(|| black_box(shared).fetch_add(1, Ordering::Relaxed))
    });
}

fn rival(c: &mut Criterion) {
    let usage = plans();
    let theirs = Arc::clone(&usage);
    // The rival counts 1,024 requests per call into its own tally and flushes
    // every 1,024 calls (about a tick's worth of requests on a busy core).
    let mut rival_tally: Option<RequestTally> = None;
    let mut round = 0u32;
    let rival_counts = move || {
        let tally = rival_tally.get_or_insert_with(RequestTally::default);
        for _ in 0..1024 {
            tally.count(&theirs, 0);
        }
        round = round.wrapping_add(1);
        if round.is_multiple_of(1024) {
            tally.flush();
        }
    };
    let tally = RequestTally::default();
    with_rival(rival_counts, || {
        c.bench_function("subscriber_requests/tally_with_rival", |b| {
            b.iter(|| tally.count(black_box(&usage), black_box(0)))
        });
    });
    tally.flush();
    let shared = Arc::clone(&usage.subscribers[0].requests);
    let theirs = Arc::clone(&shared);
    let rival_adds = move || {
        for _ in 0..1024 {
            black_box(&theirs).fetch_add(1, Ordering::Relaxed);
        }
    };
    with_rival(rival_adds, || {
        c.bench_function("subscriber_requests/shared_fetch_add_with_rival", |b| {
            b.iter(|| black_box(&shared).fetch_add(1, Ordering::Relaxed))
        });
    });
}

criterion_group!(benches, alone, rival);
criterion_main!(benches);
