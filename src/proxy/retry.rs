//! Retries with a budget: which failed tries may be sent again to another
//! server, and the per-worker budget that keeps retries from multiplying an
//! outage.
//!
//! A try may be retried when it failed before any response byte reached the
//! client and the request can be sent again: nothing was sent (connect
//! failure), or the request has no body and is idempotent (or carries an
//! `Idempotency-Key` on a back end that allows it). Each request adds
//! `budget_percent / 100` of a token to its back end's budget on this worker
//! (at most [`BUDGET_CAP`] saved); each retry spends one, so retries stay
//! within `budget_percent`% of the requests, plus the cap. Per worker: no
//! atomic on the request path.

use crate::snapshot::servers::RetrySpec;

/// Tokens a worker's budget may save for one back end (and starts with).
pub const BUDGET_CAP: f32 = 10.0;

/// One worker's retry budget for one back end.
#[derive(Debug, Clone, Copy)]
pub struct RetryBudget {
    tokens: f32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget { tokens: BUDGET_CAP }
    }
}

impl RetryBudget {
    /// A request arrived: it earns its share of a retry.
    #[inline]
    pub fn deposit(&mut self, spec: &RetrySpec) {
        self.tokens = (self.tokens + spec.budget_percent as f32 / 100.0).min(BUDGET_CAP);
    }

    /// Puts back a retry spent ahead and not used.
    pub fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(BUDGET_CAP);
    }

    /// Spends one retry if the budget holds one.
    pub fn withdraw(&mut self) -> bool {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Whether a request that reached a server may be sent again elsewhere.
pub fn resendable(
    spec: &RetrySpec,
    idempotent: bool,
    idempotency_key: bool,
    bodyless: bool,
) -> bool {
    bodyless && (idempotent || (idempotency_key && spec.idempotency_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(percent: u32) -> RetrySpec {
        RetrySpec {
            attempts: 3,
            budget_percent: percent,
            statuses: vec![503],
            idempotency_key: false,
        }
    }

    // With every try failing, retries stay within the budget share plus the cap.
    #[test]
    fn retries_stay_within_the_budget() {
        let (mut budget, spec) = (RetryBudget::default(), spec(20));
        let retries = (0..1000)
            .filter(|_| {
                budget.deposit(&spec);
                budget.withdraw()
            })
            .count();
        assert!((200..=210).contains(&retries), "{retries}");
    }

    // A body or a non-idempotent method without a key is never sent twice.
    #[test]
    fn only_bodyless_idempotent_requests_are_resent() {
        let s = spec(20);
        assert_eq!(
            [
                resendable(&s, true, false, true),
                resendable(&s, true, false, false),
                resendable(&s, false, true, true),
            ],
            [true, false, false]
        );
    }
}
