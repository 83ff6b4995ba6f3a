//! What the store thread counts, for `/metrics`: store up, round-trip
//! latency, reservations, time in fallback, live nodes, disagreements.
//! One process-wide set (a process runs at most one store thread), written
//! by that thread only, read by the admin endpoint.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Upper bounds of the round-trip histogram, in microseconds.
pub const RTT_BOUNDS_US: [u64; 9] = [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 50_000, 400_000];

/// The store thread's counters.
#[derive(Default)]
pub struct ClusterStats {
    pub active: AtomicBool,
    pub store_up: AtomicBool,
    pub rtt_buckets: [AtomicU64; 10],
    pub rtt_sum_us: AtomicU64,
    pub round_trips: AtomicU64,
    pub store_errors: AtomicU64,
    pub rate_tokens_reserved: AtomicU64,
    pub quota_counts_reserved: AtomicU64,
    pub quota_handed_back: AtomicU64,
    pub fallback_ns: AtomicU64,
    pub live_nodes: AtomicU64,
    pub disagreeing_nodes: AtomicU64,
    pub republished: AtomicU64,
}

static STATS: std::sync::OnceLock<ClusterStats> = std::sync::OnceLock::new();

/// The process's cluster counters.
pub fn stats() -> &'static ClusterStats {
    STATS.get_or_init(ClusterStats::default)
}

impl ClusterStats {
    /// Records one round trip of `us` microseconds.
    pub fn round_trip(&self, us: u64) {
        let i = RTT_BOUNDS_US
            .iter()
            .position(|b| us <= *b)
            .unwrap_or(RTT_BOUNDS_US.len());
        self.rtt_buckets[i].fetch_add(1, Ordering::Relaxed);
        self.rtt_sum_us.fetch_add(us, Ordering::Relaxed);
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The cluster series in Prometheus text format (empty on a single node).
pub fn write_metrics(out: &mut String) {
    let s = stats();
    if !s.active.load(Ordering::Relaxed) {
        return;
    }
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    family(
        out,
        "portcullis_cluster_store_up",
        "gauge",
        "1 while the cluster store answers.",
        u64::from(s.store_up.load(Ordering::Relaxed)),
    );
    let name = "portcullis_cluster_store_round_trip_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Round trips to the cluster store.\n# TYPE {name} histogram"
    );
    let mut cumulative = 0;
    for (i, bound) in RTT_BOUNDS_US.iter().enumerate() {
        cumulative += get(&s.rtt_buckets[i]);
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {cumulative}",
            *bound as f64 / 1e6
        );
    }
    cumulative += get(&s.rtt_buckets[RTT_BOUNDS_US.len()]);
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
    let _ = writeln!(out, "{name}_sum {}", get(&s.rtt_sum_us) as f64 / 1e6);
    let _ = writeln!(out, "{name}_count {cumulative}");
    family(
        out,
        "portcullis_cluster_store_errors_total",
        "counter",
        "Store calls that failed or timed out.",
        get(&s.store_errors),
    );
    family(
        out,
        "portcullis_cluster_rate_tokens_reserved_total",
        "counter",
        "Rate tokens this node reserved from the store.",
        get(&s.rate_tokens_reserved),
    );
    family(
        out,
        "portcullis_cluster_quota_counts_reserved_total",
        "counter",
        "Quota counts this node reserved from the store.",
        get(&s.quota_counts_reserved),
    );
    family(
        out,
        "portcullis_cluster_quota_counts_handed_back_total",
        "counter",
        "Unused quota reservations handed back when idle.",
        get(&s.quota_handed_back),
    );
    let _ = writeln!(
        out,
        "# HELP portcullis_cluster_fallback_seconds_total Time spent in the on_store_unavailable fallback.\n# TYPE portcullis_cluster_fallback_seconds_total counter\nportcullis_cluster_fallback_seconds_total {}",
        get(&s.fallback_ns) as f64 / 1e9
    );
    family(
        out,
        "portcullis_cluster_live_nodes",
        "gauge",
        "Nodes with a live heartbeat (this one included).",
        get(&s.live_nodes),
    );
    family(
        out,
        "portcullis_cluster_config_disagreements",
        "gauge",
        "Live nodes whose shared limits differ from this node's.",
        get(&s.disagreeing_nodes),
    );
    family(
        out,
        "portcullis_cluster_quota_republished_total",
        "counter",
        "Quota contributions written again after the store lost them.",
        get(&s.republished),
    );
}
