//! Security events in the audit log, aggregated: once per period, one line
//! with how many connections and requests were refused by network rules and
//! connection caps, and how many requests carried a missing or unknown client
//! token (TLS failures arrive later), so that an attack
//! cannot flood the log with a line per attempt.

use crate::record::Decision;
use crate::telemetry::{total, SharedWorkerStats, DECISIONS};
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
    token_failures: u64,
}

impl Refusals {
    fn now(workers: &[Arc<SharedWorkerStats>]) -> Refusals {
        let index = |decision| DECISIONS.iter().position(|d| *d == decision).unwrap_or(0);
        let (denied, missing, unknown) = (
            index(Decision::NetworkDenied),
            index(Decision::TokenMissing),
            index(Decision::TokenUnknown),
        );
        Refusals {
            by_network_rule: total(workers, |w| &w.connections_refused[0]),
            by_connection_cap: total(workers, |w| &w.connections_refused[1]),
            requests_denied: total(workers, |w| &w.decisions[denied]),
            token_failures: total(workers, |w| &w.decisions[missing])
                + total(workers, |w| &w.decisions[unknown]),
        }
    }

    fn since(self, earlier: Refusals) -> Refusals {
        Refusals {
            by_network_rule: self.by_network_rule.saturating_sub(earlier.by_network_rule),
            by_connection_cap: self
                .by_connection_cap
                .saturating_sub(earlier.by_connection_cap),
            requests_denied: self.requests_denied.saturating_sub(earlier.requests_denied),
            token_failures: self.token_failures.saturating_sub(earlier.token_failures),
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
                        requests_with_missing_or_unknown_token = delta.token_failures,
                        "security: refusals in the last period"
                    );
                }
            }
        })?;
    Ok(())
}
