//! `[cluster]`: several gateway nodes sharing their rate limits and quotas
//! through one Redis (or Redis Cluster) store. Absent: the node counts alone
//! and no store is contacted. Plain serde data; `crate::cluster::compile`
//! validates it.

use super::SecretSource;
use serde::Deserialize;

/// The `[cluster]` table as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// `redis://host:port[/db]` or `rediss://host:port[/db]` (TLS); absent
    /// when `cluster_seeds` names a Redis Cluster.
    #[serde(default)]
    pub store: Option<String>,
    /// Redis Cluster: `redis://` or `rediss://` URLs of some of its nodes.
    #[serde(default)]
    pub cluster_seeds: Vec<String>,
    /// PEM file of the certificate authority that signs the store's
    /// certificate (`rediss://` only; relative to the config file's directory).
    #[serde(default)]
    pub ca: Option<String>,
    /// ACL user; absent for the default user.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, by reference (`{ env = ".." }` or `{ file = ".." }`).
    #[serde(default)]
    pub password: Option<SecretSource>,
    /// Prefix of every key this gateway writes.
    #[serde(default = "default_prefix")]
    pub key_prefix: String,
    /// This node's name in the membership (default: the host name).
    #[serde(default)]
    pub node_name: Option<String>,
    /// What a node does while the store does not answer within the budget.
    #[serde(default)]
    pub on_store_unavailable: OnStoreUnavailable,
    /// Longest a request waits for the store, in milliseconds.
    #[serde(default = "default_wait_budget_ms")]
    pub wait_budget_ms: u64,
}

/// Behaviour while the store is unreachable or slower than the budget.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreUnavailable {
    /// Each node enforces limit ÷ live nodes; quotas are counted locally.
    #[default]
    LocalShare,
    /// 503 with `Retry-After`.
    Reject,
    /// Admit and count.
    Allow,
}

fn default_prefix() -> String {
    "portcullis:".to_string()
}

fn default_wait_budget_ms() -> u64 {
    5
}
