//! The usage-plan and rate-limit policy, in OCI's order: client token →
//! subscriber → entitlement for this deployment → entitlement rate limit →
//! quota → deployment rate limit. A request refused by one step counts toward
//! no later one. A plain function of the snapshot, the request head, the
//! client address, the worker's leases and its request tally: it answers [`Admitted`] or a
//! [`Refusal`] that says what the client gets.

use super::quota::{next_reset, nominal_seconds};
use super::{LimitState, TokenLocation, UsageSpec};
use super::{LocalShares, QuotaVerdict, RequestTally, STORE_UNAVAILABLE};
use crate::http::query::{percent_decode, query_value};
use crate::http::request::RequestHead;
use crate::policy::DeploymentPolicies;
use crate::telemetry::record::Decision;
use crate::time::clock::{mono_ns, unix_secs};
use std::net::IpAddr;

/// What the usage step learned about an admitted request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Admitted {
    /// (subscriber, client) indices in the snapshot's usage spec.
    pub client: Option<(u32, u32)>,
    /// Over quota with `on_breach = allow`: passed, counted and flagged.
    pub quota_breached: bool,
}

/// Why a request is refused, and the numbers its answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token, an unknown one, or one not entitled to this deployment.
    Token { status: u16, decision: Decision },
    /// Over a rate limit or a quota: 429.
    Limited {
        decision: Decision,
        /// `RateLimit-Policy` name.
        policy: &'static str,
        /// Requests allowed per window, and the window in seconds.
        quota: u64,
        window: u64,
        /// Whole seconds until a request may succeed (≥ 1).
        retry_after: u64,
    },
    /// Cluster mode: the store is away and `on_store_unavailable = "reject"`: 503.
    Unavailable { decision: Decision },
}

/// `Retry-After` of a 503 while the cluster store is away.
const UNAVAILABLE_RETRY_AFTER: &[u8] = b"Retry-After: 1\r\n";

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Token { status, .. } => *status,
            Refusal::Limited { .. } => 429,
            Refusal::Unavailable { .. } => 503,
        }
    }

    pub fn decision(&self) -> Decision {
        match self {
            Refusal::Token { decision, .. }
            | Refusal::Limited { decision, .. }
            | Refusal::Unavailable { decision } => *decision,
        }
    }

    /// Appends the answer's extra header fields.
    pub fn write_fields(&self, out: &mut Vec<u8>, deployment: &str) {
        let mut n = itoa::Buffer::new();
        match *self {
            Refusal::Token { status: 401, .. } => {
                out.extend_from_slice(b"WWW-Authenticate: ClientToken realm=\"");
                out.extend(deployment.bytes().filter(|b| *b != b'"' && *b != b'\\'));
                out.extend_from_slice(b"\"\r\n");
            }
            Refusal::Token { .. } => {}
            Refusal::Unavailable { .. } => out.extend_from_slice(UNAVAILABLE_RETRY_AFTER),
            Refusal::Limited {
                policy,
                quota,
                window,
                retry_after,
                ..
            } => {
                out.extend_from_slice(b"Retry-After: ");
                out.extend_from_slice(n.format(retry_after).as_bytes());
                out.extend_from_slice(b"\r\nRateLimit-Policy: \"");
                out.extend_from_slice(policy.as_bytes());
                out.extend_from_slice(b"\";q=");
                out.extend_from_slice(n.format(quota).as_bytes());
                out.extend_from_slice(b";w=");
                out.extend_from_slice(n.format(window).as_bytes());
                out.extend_from_slice(b"\r\nRateLimit: \"");
                out.extend_from_slice(policy.as_bytes());
                out.extend_from_slice(b"\";r=0;t=");
                out.extend_from_slice(n.format(retry_after).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// `RateLimit-Policy`'s quota and window for a per-second rate: `q=rate;w=1`,
/// or one request per `w` seconds below 1 request per second.
fn rate_window(requests_per_second: f64) -> (u64, u64) {
    if requests_per_second >= 1.0 {
        (requests_per_second.ceil() as u64, 1)
    } else {
        (
            1,
            (1.0 / requests_per_second).ceil().min(u64::MAX as f64) as u64,
        )
    }
}

/// A rate limit's refusal: 429 after `wait` ns, or 503 when the cluster
/// store is away and the fallback is `reject`.
fn rate_refusal(wait: u64, decision: Decision, policy: &'static str, rps: f64) -> Refusal {
    if wait == STORE_UNAVAILABLE {
        return Refusal::Unavailable { decision };
    }
    let (quota, window) = rate_window(rps);
    Refusal::Limited {
        decision,
        policy,
        quota,
        window,
        retry_after: whole_seconds(wait),
    }
}

/// Whole seconds, at least 1, for a wait of `ns` nanoseconds.
fn whole_seconds(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000).max(1)
}

/// The usage-plan and rate-limit step of the chain: the subscriber's client
/// goes into the request's context; a refusal answers 401/403 or 429 with
/// its `Retry-After` and `RateLimit` fields.
pub fn check(
    usage: &UsageSpec,
    deployment: &DeploymentPolicies,
    cx: &mut crate::policy::RequestCtx<'_, '_, '_>,
    local: &LocalShares,
    tally: &RequestTally,
) -> crate::policy::Step {
    match enforce(
        usage,
        cx.deployment,
        deployment,
        cx.head,
        cx.client,
        local,
        tally,
    ) {
        Ok(admitted) => {
            cx.usage = admitted;
            crate::policy::Step::Continue
        }
        Err(refusal) => {
            let mut fields = Vec::with_capacity(160);
            refusal.write_fields(&mut fields, cx.deployment_name);
            crate::policy::Step::Reject(crate::policy::Refusal::new(
                refusal.status(),
                refusal.decision(),
                fields,
            ))
        }
    }
}

/// Runs the usage-plan and rate-limit steps for a request to `deployment`,
/// with the worker's leases (`local`) and its count of requests per
/// subscriber (`tally`).
pub fn enforce(
    usage: &UsageSpec,
    deployment_index: usize,
    deployment: &DeploymentPolicies,
    head: &RequestHead<'_, '_>,
    client: IpAddr,
    local: &LocalShares,
    tally: &RequestTally,
) -> Result<Admitted, Refusal> {
    if deployment.usage.is_none() && deployment.rate_limit.is_none() {
        return Ok(Admitted::default());
    }
    // The wall clock is read only when a quota is counted.
    let mono = mono_ns();
    let mut admitted = Admitted::default();
    if let Some(required) = &deployment.usage {
        let token_refusal = |decision| Refusal::Token {
            status: required.reject_status,
            decision,
        };
        let Some(found) = required
            .locations
            .iter()
            .find_map(|location| find_token(head, location))
        else {
            return Err(token_refusal(Decision::UsageTokenMissing));
        };
        let Some((subscriber, client_index)) = found.with(|t| usage.client_by_token(t)) else {
            return Err(token_refusal(Decision::UsageTokenUnknown));
        };
        // Counted by this worker alone; its tick adds the count to the shared total.
        tally.count(usage, subscriber);
        let Some(grant) = usage.grant_for(subscriber, deployment_index) else {
            return Err(token_refusal(Decision::UsageNotEntitled));
        };
        admitted.client = Some((subscriber, client_index));
        let entitlement = usage.entitlement(grant);
        if let (Some(bucket), Some(params)) = (&grant.bucket, &entitlement.rate) {
            local.take_from(bucket, params, mono).map_err(|wait| {
                rate_refusal(
                    wait,
                    Decision::EntitlementRateLimited,
                    "entitlement",
                    params.requests_per_second,
                )
            })?;
        }
        if let (Some(counter), Some(params)) = (&grant.quota, &entitlement.quota) {
            let unix = unix_secs();
            match counter.count_shared(params, unix) {
                QuotaVerdict::Within { .. } => {}
                QuotaVerdict::Unavailable => {
                    return Err(Refusal::Unavailable {
                        decision: Decision::QuotaExceeded,
                    })
                }
                QuotaVerdict::Breached { .. } => admitted.quota_breached = true,
                QuotaVerdict::Refused => {
                    let reset = next_reset(params.period, unix);
                    return Err(Refusal::Limited {
                        decision: Decision::QuotaExceeded,
                        policy: "quota",
                        quota: params.limit,
                        window: nominal_seconds(params.period),
                        retry_after: (reset - unix).max(1) as u64,
                    });
                }
            }
        }
    }
    if let Some(limit) = &deployment.rate_limit {
        let taken = match &limit.state {
            LimitState::Total(bucket) => local.take_from(bucket, &limit.params, mono),
            LimitState::ClientIp(table) => table.take(local, &limit.params, client, mono),
        };
        taken.map_err(|wait| {
            rate_refusal(
                wait,
                Decision::DeploymentRateLimited,
                "deployment",
                limit.params.requests_per_second,
            )
        })?;
    }
    Ok(admitted)
}

/// A token as found in the request: raw bytes, or a query value that needs
/// percent-decoding first.
enum FoundToken<'a> {
    Raw(&'a [u8]),
    Encoded(&'a [u8]),
}

impl FoundToken<'_> {
    fn with<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            FoundToken::Raw(bytes) => f(bytes),
            FoundToken::Encoded(bytes) => f(&percent_decode(bytes)),
        }
    }
}

fn find_token<'a>(head: &RequestHead<'_, 'a>, location: &TokenLocation) -> Option<FoundToken<'a>> {
    match location {
        TokenLocation::Header(name) => head
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| crate::http::fields::trim_ows(h.value))
            .filter(|v| !v.is_empty())
            .map(FoundToken::Raw),
        TokenLocation::Query(name) => query_value(head.query?, name).map(|v| {
            if v.contains(&b'%') || v.contains(&b'+') {
                FoundToken::Encoded(v)
            } else {
                FoundToken::Raw(v)
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A 429 carries Retry-After and the IETF RateLimit fields.
    #[test]
    fn limited_answer_fields() {
        let refusal = Refusal::Limited {
            decision: Decision::QuotaExceeded,
            policy: "quota",
            quota: 100,
            window: 86_400,
            retry_after: 30,
        };
        let mut out = Vec::new();
        refusal.write_fields(&mut out, "d");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Retry-After: 30\r\nRateLimit-Policy: \"quota\";q=100;w=86400\r\nRateLimit: \"quota\";r=0;t=30\r\n"
        );
    }
}
