//! Compiling usage plans, subscribers and deployment rate limits: names
//! resolved to indices, tokens hashed into one lookup table, limits turned into
//! [`RateParams`] / [`QuotaParams`]. The shared state each limit counts in
//! (buckets, quota counters) is created fresh here and swapped for the running
//! gateway's own by [`crate::policy::usage::UsageRegistry::attach`], so a reload keeps
//! what an edit did not touch.

use crate::config::{Config, DeploymentRateLimit, DeploymentUsagePlans, RateLimitKey};
use crate::http::fields::is_token;
use crate::policy::usage::token_cache;
use crate::policy::usage::{IpTable, QuotaCounter, QuotaParams, RateParams, SharedBucket};
use std::collections::HashMap;
use std::sync::Arc;

/// Shortest plain-text client token accepted.
pub const MIN_TOKEN_LEN: usize = 16;

type CompileError = (String, String);

/// Where a deployment looks for the client token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    Header(Box<str>),
    Query(Box<str>),
}

/// A deployment's usage-plan requirement.
#[derive(Debug, Clone)]
pub struct DeploymentUsage {
    pub locations: Vec<TokenLocation>,
    /// 403 or 401 for a missing, unknown or not-entitled token.
    pub reject_status: u16,
}

/// The state a deployment rate limit counts in.
#[derive(Debug, Clone)]
pub enum LimitState {
    Total(Arc<SharedBucket>),
    ClientIp(Arc<IpTable>),
}

/// A deployment-wide rate limit.
#[derive(Debug, Clone)]
pub struct DeploymentLimit {
    pub params: RateParams,
    pub state: LimitState,
}

/// An entitlement of a plan.
#[derive(Debug)]
pub struct EntitlementSpec {
    pub name: String,
    pub deployments: Vec<usize>,
    pub rate: Option<RateParams>,
    pub quota: Option<QuotaParams>,
}

#[derive(Debug)]
pub struct PlanSpec {
    pub name: String,
    pub entitlements: Vec<EntitlementSpec>,
}

/// One (plan, entitlement) a subscriber holds, with its own counters.
#[derive(Debug)]
pub struct Grant {
    pub plan: u32,
    pub entitlement: u32,
    pub bucket: Option<Arc<SharedBucket>>,
    pub quota: Option<Arc<QuotaCounter>>,
}

#[derive(Debug)]
pub struct SubscriberSpec {
    pub name: String,
    pub clients: Vec<String>,
    /// Requests that presented one of this subscriber's tokens (kept across
    /// reloads), as of the workers' last ticks: each worker counts on its own
    /// and adds its counts here ([`super::RequestTally`]).
    pub requests: Arc<std::sync::atomic::AtomicU64>,
    /// In the subscriber's plan order: the first covering a deployment wins.
    pub grants: Vec<Grant>,
}

/// Everything usage plans need at request time.
#[derive(Debug, Default)]
pub struct UsageSpec {
    pub plans: Vec<PlanSpec>,
    pub subscribers: Vec<SubscriberSpec>,
    /// SHA-256 of a token → (subscriber, client).
    tokens: HashMap<[u8; 32], (u32, u32), ahash::RandomState>,
    /// This compilation's identity for the workers' token memos.
    generation: u64,
}

impl UsageSpec {
    /// The client a presented token belongs to: from the worker's memo of
    /// recent tokens ([`token_cache`], keyed with a per-process secret), else
    /// by the token's SHA-256. The token is hashed first either way, so the
    /// lookup's timing depends on a digest a caller cannot steer towards a real
    /// token's: no timing leaks which token bytes were right.
    pub fn client_by_token(&self, token: &[u8]) -> Option<(u32, u32)> {
        token_cache::client_of(self.generation, token, |token| {
            use sha2::{Digest, Sha256};
            let digest: [u8; 32] = Sha256::digest(token).into();
            self.tokens.get(&digest).copied()
        })
    }

    /// This compilation's identity: a reload's plans have another.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The grant of `subscriber` that entitles `deployment`: the first plan wins.
    pub fn grant_for(&self, subscriber: u32, deployment: usize) -> Option<&Grant> {
        let subscriber = self.subscribers.get(subscriber as usize)?;
        subscriber.grants.iter().find(|g| {
            self.plans[g.plan as usize].entitlements[g.entitlement as usize]
                .deployments
                .contains(&deployment)
        })
    }

    pub fn entitlement(&self, grant: &Grant) -> &EntitlementSpec {
        &self.plans[grant.plan as usize].entitlements[grant.entitlement as usize]
    }

    /// `(subscriber/client, fingerprint)` for the change summary: the
    /// fingerprint is 8 hex digits of a hash of the token's digest, enough to
    /// see a rotation, useless for guessing the token.
    pub fn client_prints(&self) -> Vec<(String, String)> {
        use sha2::{Digest, Sha256};
        let mut prints: Vec<(String, String)> = self
            .tokens
            .iter()
            .filter_map(|(digest, &(s, c))| {
                let subscriber = self.subscribers.get(s as usize)?;
                let client = subscriber.clients.get(c as usize)?;
                let hash = Sha256::digest(digest);
                let print = hash[..4].iter().map(|b| format!("{b:02x}")).collect();
                Some((format!("{}/{client}", subscriber.name), print))
            })
            .collect();
        prints.sort();
        prints
    }
}

/// A deployment's `usage_plans` table.
pub fn compile_deployment_usage(
    usage: &DeploymentUsagePlans,
    key: &dyn Fn(&str) -> String,
) -> Result<DeploymentUsage, CompileError> {
    if usage.token_locations.is_empty() {
        return Err((
            key("usage_plans.token_locations"),
            "name at least one place to look for the client token".into(),
        ));
    }
    let mut locations = Vec::new();
    for (i, text) in usage.token_locations.iter().enumerate() {
        let location = match text.split_once(':') {
            Some(("header", name)) if is_token(name.as_bytes()) => {
                TokenLocation::Header(name.into())
            }
            Some(("query", name)) if !name.is_empty() && !name.contains(['&', '=', '#']) => {
                TokenLocation::Query(name.into())
            }
            _ => {
                return Err((
                    key(&format!("usage_plans.token_locations[{i}]")),
                    format!("`{text}` is not `header:NAME` or `query:NAME`"),
                ))
            }
        };
        locations.push(location);
    }
    if !matches!(usage.reject_status, 401 | 403) {
        return Err((
            key("usage_plans.reject_status"),
            "must be 403 or 401".into(),
        ));
    }
    Ok(DeploymentUsage {
        locations,
        reject_status: usage.reject_status,
    })
}

/// A deployment's `rate_limit` table.
pub fn compile_deployment_limit(
    limit: &DeploymentRateLimit,
    key: &dyn Fn(&str) -> String,
) -> Result<DeploymentLimit, CompileError> {
    let params = RateParams::new(limit.requests_per_second, limit.burst).ok_or_else(|| {
        (
            key("rate_limit.requests_per_second"),
            "must be a positive number".into(),
        )
    })?;
    let state = match limit.key {
        RateLimitKey::Total => LimitState::Total(Arc::default()),
        RateLimitKey::ClientIp => LimitState::ClientIp(Arc::default()),
    };
    Ok(DeploymentLimit { params, state })
}

/// Plans and subscribers; `deployments` are the compiled deployments' names.
pub fn compile_usage(
    config: &Config,
    deployments: &[&str],
    warnings: &mut Vec<String>,
) -> Result<UsageSpec, CompileError> {
    let mut plans: Vec<PlanSpec> = Vec::with_capacity(config.usage_plans.len());
    let mut plan_index: HashMap<&str, u32> = HashMap::new();
    for (p, plan) in config.usage_plans.iter().enumerate() {
        let key = |k: &str| format!("usage_plans[{p}].{k}");
        if plan.name.is_empty() || plan_index.insert(&plan.name, p as u32).is_some() {
            return Err((
                key("name"),
                format!("usage plan name `{}` is empty or repeated", plan.name),
            ));
        }
        let mut entitlements: Vec<EntitlementSpec> = Vec::new();
        for (e, ent) in plan.entitlements.iter().enumerate() {
            let key = |k: &str| key(&format!("entitlements[{e}].{k}"));
            if ent.name.is_empty() || entitlements.iter().any(|o| o.name == ent.name) {
                return Err((
                    key("name"),
                    format!("entitlement name `{}` is empty or repeated", ent.name),
                ));
            }
            if ent.deployments.is_empty() {
                return Err((key("deployments"), "name at least one deployment".into()));
            }
            let mut targets = Vec::new();
            for (i, name) in ent.deployments.iter().enumerate() {
                let index = deployments.iter().position(|d| d == name).ok_or_else(|| {
                    (
                        key(&format!("deployments[{i}]")),
                        format!("unknown deployment `{name}`"),
                    )
                })?;
                targets.push(index);
            }
            let rate = match &ent.rate_limit {
                Some(r) => Some(RateParams::new(r.requests_per_second, r.burst).ok_or_else(
                    || {
                        (
                            key("rate_limit.requests_per_second"),
                            "must be a positive number".to_string(),
                        )
                    },
                )?),
                None => None,
            };
            let quota = match &ent.quota {
                Some(q) if q.limit == 0 => {
                    return Err((key("quota.limit"), "must be at least 1".into()))
                }
                Some(q) => Some(QuotaParams {
                    limit: q.limit,
                    period: q.period,
                    on_breach: q.on_breach,
                }),
                None => None,
            };
            entitlements.push(EntitlementSpec {
                name: ent.name.clone(),
                deployments: targets,
                rate,
                quota,
            });
        }
        plans.push(PlanSpec {
            name: plan.name.clone(),
            entitlements,
        });
    }
    let mut subscribers = Vec::with_capacity(config.subscribers.len());
    let mut subscriber_names: HashMap<&str, (), ahash::RandomState> =
        HashMap::with_capacity_and_hasher(config.subscribers.len(), Default::default());
    let mut tokens: HashMap<[u8; 32], (u32, u32), ahash::RandomState> =
        HashMap::with_capacity_and_hasher(config.subscribers.len(), Default::default());
    let mut token_owner: HashMap<[u8; 32], (usize, usize), ahash::RandomState> =
        HashMap::with_capacity_and_hasher(config.subscribers.len(), Default::default());
    for (s, sub) in config.subscribers.iter().enumerate() {
        let key = |k: &str| format!("subscribers[{s}].{k}");
        if sub.name.is_empty() || subscriber_names.insert(&sub.name, ()).is_some() {
            return Err((
                key("name"),
                format!("subscriber name `{}` is empty or repeated", sub.name),
            ));
        }
        if sub.usage_plans.is_empty() {
            return Err((key("usage_plans"), "name at least one usage plan".into()));
        }
        let mut grants = Vec::new();
        for (i, name) in sub.usage_plans.iter().enumerate() {
            let &plan = plan_index.get(name.as_str()).ok_or_else(|| {
                (
                    key(&format!("usage_plans[{i}]")),
                    format!("unknown usage plan `{name}`"),
                )
            })?;
            if grants.iter().any(|g: &Grant| g.plan == plan) {
                return Err((
                    key(&format!("usage_plans[{i}]")),
                    format!("usage plan `{name}` is listed twice"),
                ));
            }
            for (e, ent) in plans[plan as usize].entitlements.iter().enumerate() {
                grants.push(Grant {
                    plan,
                    entitlement: e as u32,
                    bucket: ent.rate.map(|_| Arc::default()),
                    quota: ent.quota.map(|_| Arc::default()),
                });
            }
        }
        let mut clients: Vec<String> = Vec::with_capacity(sub.clients.len());
        for (c, client) in sub.clients.iter().enumerate() {
            let key = |k: &str| key(&format!("clients[{c}].{k}"));
            if client.name.is_empty() || clients.contains(&client.name) {
                return Err((
                    key("name"),
                    format!("client name `{}` is empty or repeated", client.name),
                ));
            }
            let digest = match (&client.token, &client.token_sha256) {
                (Some(token), None) => {
                    if token.len() < MIN_TOKEN_LEN {
                        return Err((
                            key("token"),
                            format!(
                                "client token is empty or too short (at least {MIN_TOKEN_LEN} characters; `portcullis token` makes one)"
                            ),
                        ));
                    }
                    use sha2::{Digest, Sha256};
                    Sha256::digest(token.as_bytes()).into()
                }
                (None, Some(hex)) => parse_sha256(hex).ok_or_else(|| {
                    (
                        key("token_sha256"),
                        "must be 64 hexadecimal characters (a SHA-256 digest)".to_string(),
                    )
                })?,
                _ => {
                    return Err((
                        key("token"),
                        "give exactly one of `token` and `token_sha256`".into(),
                    ))
                }
            };
            if let Some((s0, c0)) = token_owner.insert(digest, (s, c)) {
                let first = &config.subscribers[s0];
                return Err((
                    key("token"),
                    format!(
                        "the same token is already given to client `{}/{}`",
                        first.name, first.clients[c0].name
                    ),
                ));
            }
            tokens.insert(digest, (s as u32, c as u32));
            clients.push(client.name.clone());
        }
        if clients.is_empty() {
            warnings.push(format!(
                "subscriber `{}` has no clients: nobody can call as it",
                sub.name
            ));
        }
        subscribers.push(SubscriberSpec {
            name: sub.name.clone(),
            clients,
            requests: Arc::default(),
            grants,
        });
    }
    for plan in &plans {
        for entitlement in &plan.entitlements {
            for &d in &entitlement.deployments {
                if config.deployments[d].usage_plans.is_none() {
                    warnings.push(format!(
                        "usage plan `{}` entitlement `{}` names deployment `{}`, which does not require a client token (no `usage_plans` on it): its limits never apply",
                        plan.name, entitlement.name, config.deployments[d].name
                    ));
                }
            }
        }
    }
    for (d, deployment) in config.deployments.iter().enumerate() {
        if deployment.usage_plans.is_some()
            && !plans
                .iter()
                .flat_map(|p| &p.entitlements)
                .any(|e| e.deployments.contains(&d))
        {
            warnings.push(format!(
                "deployment `{}` requires a usage plan but no entitlement names it: every request gets {}",
                deployment.name,
                deployment.usage_plans.as_ref().map_or(403, |u| u.reject_status)
            ));
        }
    }
    Ok(UsageSpec {
        plans,
        subscribers,
        tokens,
        generation: token_cache::next_generation(),
    })
}

fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A digest is accepted in either case; other lengths are not.
    #[test]
    fn sha256_hex_parsed() {
        let upper = "AB".repeat(32);
        assert_eq!(
            (parse_sha256(&upper).map(|d| d[0]), parse_sha256("abcd")),
            (Some(0xab), None)
        );
    }
}
