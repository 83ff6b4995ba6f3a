//! Usage plans at request time: client tokens, entitlement rate limits and
//! quotas, deployment rate limits — step 5 of a request's way, after the
//! network rule.
//!
//! | piece | file |
//! |---|---|
//! | shared token buckets leased per worker (the cross-core bound) | `bucket.rs` |
//! | per-client-address buckets, bounded | `ip_table.rs` |
//! | quota counters and the UTC calendar | `quota.rs` |
//! | the policy: token → subscriber → entitlement → limits | `enforce.rs` |
//! | requests per subscriber, counted per worker, added up on its tick | `request_tally.rs` |
//! | counters kept across reloads, keyed by stable names | `registry.rs` |
//! | quota counts kept across restarts under `state_dir` | `persist.rs` |
//! | cluster mode: the node's reservations from the store, fallbacks; store names | `remote.rs`, `remote_quota.rs`, `shared.rs` |
//! | quota counts carried across a zero-downtime takeover | `handover.rs` |
//! | plans, subscribers and deployment limits compiled from config | `plans.rs` |
//! | each worker's memo of recent client tokens (no SHA-256 per request) | `token_cache.rs` |
//! | client token generation (`portcullis token`) | `token.rs` |
//!
//! The snapshot holds what `plans.rs` compiles; nothing here imports the
//! snapshot.

mod bucket;
mod enforce;
mod handover;
mod ip_table;
mod persist;
mod plans;
mod quota;
mod registry;
mod remote;
mod remote_quota;
mod request_tally;
mod shared;
pub mod token;
mod token_cache;

pub use bucket::{LocalShares, RateParams, SharedBucket, LEASE_TTL_NS, MAX_BATCH};
pub use enforce::{check, enforce, Admitted, Refusal};
pub use handover::QuotaHandover;
pub use ip_table::IpTable;
pub use persist::{flush, spawn_flusher, QuotaStore, FLUSH_INTERVAL};
pub use plans::{
    compile_deployment_limit, compile_deployment_usage, compile_usage, DeploymentLimit,
    DeploymentUsage, EntitlementSpec, Grant, LimitState, PlanSpec, SubscriberSpec, TokenLocation,
    UsageSpec, MIN_TOKEN_LEN,
};
pub use quota::{next_reset, period_name, period_number, QuotaCounter, QuotaParams, QuotaVerdict};
pub use registry::{QuotaKey, UsageRegistry};
pub use remote::{
    quota_view, Asked, ClusterLink, Fallback, RemoteRate, RESERVATION_TTL_NS, STORE_UNAVAILABLE,
};
pub use remote_quota::{period_key, RemoteQuota, EXHAUSTED_NS};
pub use request_tally::RequestTally;
pub use shared::address_name;
