//! Security events in the audit log, aggregated: once per period, one line
//! with how many connections and requests were refused by network rules,
//! connection caps, authentication (missing or invalid tokens), authorization,
//! usage plans (missing or unknown client tokens) and TLS handshakes that
//! failed, so that an attack cannot flood the log with a line per attempt.

use crate::telemetry::counters::{total, SharedWorkerStats, DECISIONS};
use crate::telemetry::record::Decision;
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// How often refusals are summarised.
pub const SUMMARY_PERIOD: Duration = Duration::from_secs(10);

/// Counts of refusals, summed over workers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Refusals {
    by_network_rule: u64,
    by_connection_cap: u64,
    requests_denied: u64,
    tokens_missing: u64,
    tokens_invalid: u64,
    scopes_denied: u64,
    client_token_failures: u64,
    tls_handshake_failures: u64,
}

impl Refusals {
    fn now(workers: &[Arc<SharedWorkerStats>]) -> Refusals {
        let count = |decision: Decision| {
            let i = DECISIONS.iter().position(|d| *d == decision).unwrap_or(0);
            total(workers, |w| &w.decisions[i])
        };
        Refusals {
            by_network_rule: total(workers, |w| &w.connections_refused[0]),
            by_connection_cap: total(workers, |w| &w.connections_refused[1]),
            requests_denied: count(Decision::NetworkDenied),
            tokens_missing: count(Decision::TokenMissing),
            tokens_invalid: count(Decision::TokenInvalid),
            scopes_denied: count(Decision::ScopeDenied),
            client_token_failures: count(Decision::UsageTokenMissing)
                + count(Decision::UsageTokenUnknown),
            tls_handshake_failures: total(workers, |w| &w.tls_handshakes[1]),
        }
    }

    fn since(self, earlier: Refusals) -> Refusals {
        Refusals {
            by_network_rule: self.by_network_rule.saturating_sub(earlier.by_network_rule),
            by_connection_cap: self
                .by_connection_cap
                .saturating_sub(earlier.by_connection_cap),
            requests_denied: self.requests_denied.saturating_sub(earlier.requests_denied),
            tokens_missing: self.tokens_missing.saturating_sub(earlier.tokens_missing),
            tokens_invalid: self.tokens_invalid.saturating_sub(earlier.tokens_invalid),
            scopes_denied: self.scopes_denied.saturating_sub(earlier.scopes_denied),
            client_token_failures: self
                .client_token_failures
                .saturating_sub(earlier.client_token_failures),
            tls_handshake_failures: self
                .tls_handshake_failures
                .saturating_sub(earlier.tls_handshake_failures),
        }
    }
}

/// Starts the thread that writes one audit line per period in which something was refused.
pub fn spawn_security_summary(
    workers: Vec<Arc<SharedWorkerStats>>,
    period: Duration,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("portcullis-audit".into())
        .spawn(move || {
            let mut last = Refusals::now(&workers);
            loop {
                std::thread::sleep(period);
                let now = Refusals::now(&workers);
                let delta = now.since(last);
                last = now;
                if delta != Refusals::default() {
                    warn!(
                        target: "portcullis::audit",
                        period_s = period.as_secs(),
                        connections_refused_by_network_rule = delta.by_network_rule,
                        connections_refused_by_cap = delta.by_connection_cap,
                        requests_denied_by_network_rule = delta.requests_denied,
                        requests_without_token = delta.tokens_missing,
                        requests_with_invalid_token = delta.tokens_invalid,
                        requests_denied_by_scope = delta.scopes_denied,
                        requests_with_missing_or_unknown_client_token = delta.client_token_failures,
                        tls_handshakes_failed = delta.tls_handshake_failures,
                        "security: refusals in the last period"
                    );
                }
            }
        })?;
    Ok(())
}
