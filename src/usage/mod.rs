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
//! | counters kept across reloads, keyed by stable names | `registry.rs` |
//! | quota counts kept across restarts under `state_dir` | `persist.rs` |
//! | quota counts carried across a zero-downtime takeover | `handover.rs` |
//! | the process clock all workers share | `clock.rs` |
//! | client token generation (`portcullis token`) | `token.rs` |
//!
//! Compiling plans and subscribers from the config is
//! [`crate::snapshot`]'s job (`snapshot/usage.rs`).

mod bucket;
mod clock;
mod enforce;
mod handover;
mod ip_table;
mod persist;
mod quota;
mod registry;
pub mod token;

pub use bucket::{LocalShares, RateParams, SharedBucket, LEASE_TTL_NS, MAX_BATCH};
pub use clock::{now, Now};
pub use enforce::{enforce, Admitted, Refusal};
pub use handover::QuotaHandover;
pub use ip_table::{address_key, IpTable};
pub use persist::{flush, spawn_flusher, QuotaStore, FLUSH_INTERVAL};
pub use quota::{
    civil_from_days, days_from_civil, next_reset, period_name, period_number, QuotaCounter,
    QuotaParams, QuotaVerdict,
};
pub use registry::{QuotaKey, UsageRegistry};
