//! Several gateway nodes, one set of limits: rate limits and quotas shared
//! through a Redis store (one server or a Redis Cluster).
//!
//! # Leases, two levels
//!
//! ```text
//!  worker ──lease (≤ batch)──▶ node reservation ──reserve (adaptive batch)──▶ Redis
//!  (no atomic per request)     (policy::usage::remote)   store thread, Lua, one key
//! ```
//!
//! Workers lease from the node exactly as on one node. In cluster mode the
//! node's bucket is a reservation the store thread ([`sync`]) takes from
//! Redis ahead of need: when a key's reservation falls under half a batch it
//! asks for a batch sized to the key's observed rate (about 50 ms of it), so
//! a slow key holds few tokens and a busy one needs few round trips. A
//! request never waits on the network except, when its key has nothing
//! reserved, for at most `wait_budget_ms`; after that the fallback decides.
//!
//! # The bound
//!
//! - **Rate**: the store runs one GCRA per key, so it grants at most
//!   `limit·W + burst` tokens in any window `W`. A token admitted inside the
//!   window but granted before it was held by a node (a reservation, which
//!   lapses after [`RESERVATION_TTL_NS`](crate::policy::usage::RESERVATION_TTL_NS))
//!   or by a worker (a lease). So requests admitted cluster-wide in any
//!   window ≤ `limit·W + burst + Σ outstanding reservations of all nodes`
//!   (each node: < 1.5 batches per key, workers' leases included).
//! - **Quota**: every node's contribution is a field of one hash per period;
//!   a node reserves only while the sum stays ≤ the quota and admits only
//!   what it reserved, so admitted ≤ quota while the store answers within
//!   the budget (a later answer lets `local_share` lend each node at most
//!   one batch past its reservation); unused
//!   reservations are handed back when a key is idle for
//!   [`sync::IDLE_HAND_BACK`], after which the sum is exactly the count. A
//!   node killed with -9 strands at most its reservation (one batch): the
//!   store cannot tell its unspent part from requests admitted after the
//!   node's last write, so it counts as used until the period ends (a
//!   restarted node whose `state_dir` file is not final takes its own field
//!   in the store as a floor of its count, [`sync`]). Releasing it early would
//!   let the cluster pass the quota.
//!
//! # Faults
//!
//! The store unreachable, or not answering within the budget:
//! `on_store_unavailable` decides (`local_share`: limit ÷ live nodes from the
//! last membership, quotas counted locally up to the node's reservation plus
//! its share of what was left; `reject`: 503 + `Retry-After`; `allow`). Quota
//! counts are kept as absolute per-node contributions, so whatever was
//! counted meanwhile, and everything a store that came back empty lost, is
//! published again by the next write ([`sync`]).
//!
//! | piece | file |
//! |---|---|
//! | `[cluster]` compiled and checked | `spec.rs` |
//! | connection, TLS, Redis Cluster, the Lua scripts | `store.rs` |
//! | the store thread: reservations, hand-back, republishing | `sync.rs` |
//! | heartbeats, live nodes, config disagreements | `membership.rs` |
//! | metrics of the store and the leases | `stats.rs` |

pub mod membership;
pub mod spec;
pub mod stats;
pub mod store;
pub mod sync;

pub use spec::{compile, ClusterSpec, StoreAddress};
pub use sync::spawn;

use crate::policy::usage::{ClusterLink, UsageRegistry};
use std::sync::Arc;

/// Cluster mode at start: every limit `registry` attaches from now on leases
/// through the store thread started here. Nothing on a single node.
pub fn start(spec: Option<&ClusterSpec>, registry: &UsageRegistry) -> std::io::Result<()> {
    let Some(spec) = spec else { return Ok(()) };
    let link = Arc::new(ClusterLink::new(
        spec.fallback(),
        spec.wait_budget_ms * 1_000_000,
    ));
    registry.set_cluster(Arc::clone(&link));
    spawn(spec.clone(), link, registry.counts_final())
}
