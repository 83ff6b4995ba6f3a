//! Membership: each node refreshes a heartbeat (TTL [`HEARTBEAT_TTL_MS`])
//! carrying the digest of its shared limits; the live nodes are counted from
//! the heartbeats (the divisor of `local_share`), and nodes whose digest
//! differs from this node's are logged and counted.

use super::stats::stats;
use std::sync::atomic::Ordering;
use tracing::{info, warn};

/// How long a node counts as live after its last heartbeat.
pub const HEARTBEAT_TTL_MS: u64 = 3_000;
/// How often a node sends its heartbeat.
pub const HEARTBEAT_EVERY_MS: u64 = 1_000;

/// What this node last saw of the membership.
#[derive(Default)]
pub struct Membership {
    live: Vec<String>,
    disagreeing: Vec<String>,
}

impl Membership {
    /// Takes a heartbeat's answer: logs joins, departures and disagreements.
    /// Returns the number of live nodes.
    pub fn update(&mut self, me: &str, digest: &str, members: Vec<(String, String)>) -> u32 {
        let mut live: Vec<String> = members.iter().map(|(n, _)| n.clone()).collect();
        live.sort();
        if live != self.live {
            info!(
                target: "portcullis::audit",
                node = me,
                live = live.len(),
                nodes = %live.join(","),
                "cluster membership changed"
            );
            self.live = live;
        }
        let mut disagreeing: Vec<String> = members
            .into_iter()
            .filter(|(_, d)| d != digest)
            .map(|(n, _)| n)
            .collect();
        disagreeing.sort();
        if disagreeing != self.disagreeing && !disagreeing.is_empty() {
            warn!(
                node = me,
                nodes = %disagreeing.join(","),
                "cluster nodes disagree about the shared limits (their configuration differs from this node's)"
            );
        }
        self.disagreeing = disagreeing;
        let s = stats();
        s.live_nodes
            .store(self.live.len() as u64, Ordering::Relaxed);
        s.disagreeing_nodes
            .store(self.disagreeing.len() as u64, Ordering::Relaxed);
        self.live.len().max(1) as u32
    }
}
