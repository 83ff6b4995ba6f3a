//! A deployment's network rule (OCI's "allowed networks"), the first policy
//! of the chain: a client address outside it gets 403 or a closed
//! connection, before any token is read. The listener's own rule is applied
//! earlier, at accept ([`crate::runtime::admission`]).

use super::{Refusal, Step};
use crate::config::OnDeny;
use crate::net::cidr::{CidrSet, NetworkRule};
use crate::telemetry::record::Decision;
use std::net::IpAddr;

/// The rule and what a denied caller gets.
pub type NetworkPolicy = (NetworkRule, OnDeny);

/// Checks the client address against the deployment's rule.
pub fn check(policy: &NetworkPolicy, client: IpAddr) -> Step {
    let (rule, on_deny) = policy;
    if rule.permits(client) {
        return Step::Continue;
    }
    Step::Reject(Refusal {
        status: 403,
        decision: Decision::NetworkDenied,
        fields: Vec::new(),
        silent: matches!(on_deny, OnDeny::Close),
    })
}

/// Parses allow and deny lists (a listener's or a deployment's); an error
/// names the offending entry (`allow[2]`).
pub fn compile_rule(allow: &[String], deny: &[String]) -> Result<NetworkRule, (String, String)> {
    let parse = |list: &[String], name: &str| {
        CidrSet::parse(list).map_err(|e| (format!("{name}[{}]", e.index), e.to_string()))
    };
    Ok(NetworkRule {
        allow: parse(allow, "allow")?,
        deny: parse(deny, "deny")?,
    })
}
