//! Usage plans, subscribers and rate limits as the operator writes them
//! (serde data only; validation lives in `snapshot::usage`).

use serde::{Deserialize, Serialize};

/// `[[usage_plans]]`: a named set of entitlements.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsagePlan {
    pub name: String,
    #[serde(default)]
    pub entitlements: Vec<Entitlement>,
}

/// What a plan grants on some deployments.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlement {
    pub name: String,
    /// Deployment names this entitlement opens.
    pub deployments: Vec<String>,
    /// Absent: no rate limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Absent: no quota.
    #[serde(default)]
    pub quota: Option<Quota>,
}

/// A per-second rate limit (token bucket).
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests_per_second: f64,
    /// Requests that may arrive at once (default: a tenth of a second's worth, at least 1).
    #[serde(default)]
    pub burst: Option<u32>,
}

/// A count of requests per calendar period (UTC).
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub limit: u64,
    pub period: QuotaPeriod,
    #[serde(default)]
    pub on_breach: OnBreach,
}

/// Calendar periods a quota resets on, in UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum QuotaPeriod {
    Minute,
    Hour,
    Day,
    /// ISO week, starting Monday 00:00 UTC.
    Week,
    Month,
}

/// What a request over its quota gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBreach {
    /// 429 with `Retry-After`.
    #[default]
    Reject,
    /// Passes, counted and flagged in the access log.
    Allow,
}

/// `[[subscribers]]`: a customer; its clients share its limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriber {
    pub name: String,
    /// Plan names, in order: the first plan entitling a deployment wins.
    pub usage_plans: Vec<String>,
    #[serde(default)]
    pub clients: Vec<Client>,
}

/// One credential of a subscriber: a plain token or its SHA-256 (hex).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub name: String,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_sha256: Option<String>,
}

/// A deployment's opt-in to usage plans.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentUsagePlans {
    /// Where the client token is looked for, in order: `header:NAME` or `query:NAME`.
    pub token_locations: Vec<String>,
    /// Status for a missing, unknown or not-entitled token: 403 (default) or 401.
    #[serde(default = "default_reject_status")]
    pub reject_status: u16,
}

fn default_reject_status() -> u16 {
    403
}

/// A deployment-wide rate limit, like OCI's `rateLimiting`.
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentRateLimit {
    pub requests_per_second: f64,
    #[serde(default)]
    pub key: RateLimitKey,
    #[serde(default)]
    pub burst: Option<u32>,
}

/// What a deployment rate limit counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitKey {
    /// One bucket for the whole deployment.
    #[default]
    Total,
    /// One bucket per client address (IPv6 by /64).
    ClientIp,
}

/// A file named in `include`: what may live outside the main file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fragment {
    #[serde(default)]
    pub usage_plans: Vec<UsagePlan>,
    #[serde(default)]
    pub subscribers: Vec<Subscriber>,
}
