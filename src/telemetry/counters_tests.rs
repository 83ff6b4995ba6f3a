//! Rules of the per-worker counters and their merging.

use super::*;
use std::time::Duration;

// The latency histogram's constant bounds are valid and record an hour.
#[test]
fn latency_histogram_bounds() {
    assert!(latency_histogram().record(3_600_000_000).is_ok());
}

// The merged sum is the exact sum of the recorded durations, over workers.
#[test]
fn merged_sum_is_exact() {
    let shared: Vec<Arc<SharedWorkerStats>> = (0..2).map(|_| Arc::default()).collect();
    let workers: Vec<WorkerTelemetry> = shared
        .iter()
        .map(|s| WorkerTelemetry::new(Arc::clone(s)))
        .collect();
    let durations = [123_457u64, 7, 1_999_999];
    for (i, micros) in durations.iter().enumerate() {
        workers[i % 2].request_done(&Outcome {
            status: 200,
            decision: Decision::StockResponse,
            bytes_in: 0,
            bytes_out: 0,
            total: Duration::from_micros(*micros),
            backend: None,
        });
    }
    for worker in &workers {
        worker.publish();
    }
    let all = merged(&shared, |w| &w.request_latency);
    assert_eq!(
        (all.sum_micros, all.histogram.len()),
        (durations.iter().sum::<u64>(), 3)
    );
}
