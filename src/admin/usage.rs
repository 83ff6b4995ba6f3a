//! `/usage`: each subscriber's requests (summed from the workers' counts on
//! their ticks) and current usage per entitlement — used, limit,
//! remaining and reset time of its quota, and the tokens its rate limit has
//! left — read from the running snapshot's shared counters (exact: quota counts
//! are counted per request, not leased). `?subscriber=NAME` narrows it to one.
//! In cluster mode each quota also shows the cluster-wide count as last read
//! from the store and this node's share of it.

use crate::policy::usage::SubscriberSpec;
use crate::policy::usage::{next_reset, period_name};
use crate::snapshot::Snapshot;
use crate::time::clock::now;
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    generation: u64,
    now: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterState<'a>>,
    subscribers: Vec<SubscriberUsage<'a>>,
}

/// This node in the cluster.
#[derive(Serialize)]
struct ClusterState<'a> {
    node: &'a str,
    store_up: bool,
    live_nodes: u64,
}

/// A quota across the cluster.
#[derive(Serialize)]
struct ClusterQuota {
    /// Every node's contribution (counts plus reservations), as last read.
    cluster_used: u64,
    /// What this node counted.
    this_node_used: u64,
    /// What this node holds (its count plus unused reservation).
    this_node_reserved: u64,
}

#[derive(Serialize)]
struct SubscriberUsage<'a> {
    name: &'a str,
    clients: &'a [String],
    /// Requests that presented one of its tokens since start, as of the
    /// workers' last ticks (each worker adds its own count every 50 ms).
    requests: u64,
    entitlements: Vec<EntitlementUsage<'a>>,
}

#[derive(Serialize)]
struct EntitlementUsage<'a> {
    plan: &'a str,
    entitlement: &'a str,
    deployments: Vec<&'a str>,
    rate_limit: Option<RateUsage>,
    quota: Option<QuotaUsage>,
}

#[derive(Serialize)]
struct RateUsage {
    requests_per_second: f64,
    burst: u32,
    remaining: u64,
}

#[derive(Serialize)]
struct QuotaUsage {
    period: &'static str,
    limit: u64,
    used: u64,
    remaining: u64,
    resets_at: String,
    on_breach: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterQuota>,
}

fn rfc3339(unix: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(time).to_string()
}

fn subscriber_usage<'a>(
    snapshot: &'a Snapshot,
    subscriber: &'a SubscriberSpec,
) -> SubscriberUsage<'a> {
    let now = now();
    let usage = &snapshot.usage;
    let entitlements = subscriber
        .grants
        .iter()
        .map(|grant| {
            let plan = &usage.plans[grant.plan as usize];
            let entitlement = usage.entitlement(grant);
            EntitlementUsage {
                plan: &plan.name,
                entitlement: &entitlement.name,
                deployments: entitlement
                    .deployments
                    .iter()
                    .map(|&d| snapshot.deployments[d].name.as_str())
                    .collect(),
                rate_limit: grant
                    .bucket
                    .as_ref()
                    .zip(entitlement.rate)
                    .map(|(bucket, p)| RateUsage {
                        requests_per_second: p.requests_per_second,
                        burst: p.burst,
                        remaining: bucket.remaining(&p, now.mono_ns),
                    }),
                quota: grant
                    .quota
                    .as_ref()
                    .zip(entitlement.quota)
                    .map(|(counter, q)| {
                        let local = counter.used(q.period, now.unix_secs);
                        let cluster =
                            crate::policy::usage::quota_view(counter).map(|(total, reserved)| {
                                ClusterQuota {
                                    cluster_used: total.max(local),
                                    this_node_used: local,
                                    this_node_reserved: reserved.max(local),
                                }
                            });
                        let used = cluster.as_ref().map_or(local, |c| c.cluster_used);
                        QuotaUsage {
                            period: period_name(q.period),
                            limit: q.limit,
                            used,
                            remaining: q.limit.saturating_sub(used),
                            resets_at: rfc3339(next_reset(q.period, now.unix_secs)),
                            on_breach: match q.on_breach {
                                crate::config::OnBreach::Reject => "reject",
                                crate::config::OnBreach::Allow => "allow",
                            },
                            cluster,
                        }
                    }),
            }
        })
        .collect();
    SubscriberUsage {
        name: &subscriber.name,
        clients: &subscriber.clients,
        requests: subscriber
            .requests
            .load(std::sync::atomic::Ordering::Relaxed),
        entitlements,
    }
}

/// The JSON body of `/usage`; `None` when `only` names no subscriber.
pub fn usage_report(snapshot: &Snapshot, only: Option<&str>) -> Option<String> {
    let subscribers: Vec<SubscriberUsage<'_>> = snapshot
        .usage
        .subscribers
        .iter()
        .filter(|s| only.is_none_or(|name| s.name == name))
        .map(|s| subscriber_usage(snapshot, s))
        .collect();
    if only.is_some() && subscribers.is_empty() {
        return None;
    }
    let report = Report {
        generation: snapshot.generation,
        now: rfc3339(now().unix_secs),
        cluster: snapshot.cluster.as_ref().map(|c| {
            let stats = crate::cluster::stats::stats();
            ClusterState {
                node: &c.node_name,
                store_up: stats.store_up.load(std::sync::atomic::Ordering::Relaxed),
                live_nodes: stats.live_nodes.load(std::sync::atomic::Ordering::Relaxed),
            }
        }),
        subscribers,
    };
    serde_json::to_string(&report).ok()
}

/// The value of `name` in a query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    let value = crate::http::query::query_value(query, name)?;
    Some(String::from_utf8_lossy(&crate::http::query::percent_decode(value)).into_owned())
}
