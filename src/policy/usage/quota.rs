//! Quota counters: requests per UTC calendar period, exact across cores.
//!
//! One `AtomicU64` per counter holds the period it counts (low 24 bits of the
//! period number) and the count (40 bits); one compare-and-swap per request
//! both rolls the period over and counts, so no request is counted in the
//! wrong period and none is lost. Counts are exact (no leasing): they are what
//! `state_dir` persists and what the usage endpoint shows. Time comes in as an
//! argument (`now`, Unix seconds), so the calendar is tested without sleeping.

use super::remote_quota::RemoteQuota;
use crate::config::{OnBreach, QuotaPeriod};
use crate::time::calendar::{civil_from_days, days_from_civil};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

const COUNT_BITS: u32 = 40;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const TAG_MASK: u64 = (1 << 24) - 1;

/// A quota, compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaParams {
    pub limit: u64,
    pub period: QuotaPeriod,
    pub on_breach: OnBreach,
}

/// What a counted request learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaVerdict {
    /// Counted; `used` includes this request.
    Within { used: u64 },
    /// Over the limit but let through (`on_breach = allow`); counted.
    Breached { used: u64 },
    /// Over the limit and refused (not counted).
    Refused,
    /// Cluster mode, store away, `on_store_unavailable = "reject"`: 503.
    Unavailable,
}

/// One subscriber entitlement's count in the current period.
#[derive(Debug, Default)]
pub struct QuotaCounter {
    state: AtomicU64,
    /// Cluster mode: this node's reservation of the cluster-wide quota.
    remote: OnceLock<Arc<RemoteQuota>>,
}

impl std::fmt::Debug for RemoteQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteQuota({})", self.name)
    }
}

fn pack(period: i64, used: u64) -> u64 {
    pack_tag(period as u64 & TAG_MASK, used)
}

fn pack_tag(tag: u64, used: u64) -> u64 {
    (tag << COUNT_BITS) | used.min(COUNT_MASK)
}

/// True when period tag `a` comes after `b` (modulo 2^24: periods are
/// compared over at most half the tag range, millennia for any period kind).
fn is_after(a: u64, b: u64) -> bool {
    let ahead = a.wrapping_sub(b) & TAG_MASK;
    ahead != 0 && ahead < TAG_MASK / 2
}

fn tag_of(state: u64) -> u64 {
    state >> COUNT_BITS
}

impl QuotaCounter {
    /// A counter that already counted `used` in period number `period`.
    pub fn seeded(period: i64, used: u64) -> Self {
        QuotaCounter {
            state: AtomicU64::new(pack(period, used)),
            remote: OnceLock::new(),
        }
    }

    /// Shares this counter through the cluster store (once; at attach).
    pub fn set_remote(&self, remote: Arc<RemoteQuota>) {
        let _ = self.remote.set(remote);
    }

    pub fn remote(&self) -> Option<&Arc<RemoteQuota>> {
        self.remote.get()
    }

    /// Counts one request: against the cluster-wide quota in cluster mode,
    /// else as [`QuotaCounter::count`].
    pub fn count_shared(self: &Arc<Self>, params: &QuotaParams, now: i64) -> QuotaVerdict {
        match self.remote.get() {
            Some(remote) => remote.count(self, params, now),
            None => self.count(params, now),
        }
    }

    /// The plain local count (no store), for the cluster's fallbacks.
    pub fn count_plain(&self, params: &QuotaParams, now: i64) -> QuotaVerdict {
        self.count(params, now)
    }

    /// Counts one request at `now` only if fewer than `ceiling` were counted
    /// in its period; `Some(used)` includes it.
    pub fn count_below(&self, period: QuotaPeriod, now: i64, ceiling: u64) -> Option<u64> {
        let tag = period_number(period, now) as u64 & TAG_MASK;
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let stored = tag_of(state);
            let counted = state & COUNT_MASK > 0;
            let (tag, used) = if stored == tag || (counted && is_after(stored, tag)) {
                (stored, state & COUNT_MASK)
            } else {
                (tag, 0)
            };
            if used >= ceiling {
                return None;
            }
            match self.state.compare_exchange_weak(
                state,
                pack_tag(tag, used + 1),
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(used + 1),
                Err(actual) => state = actual,
            }
        }
    }

    /// Counts one request at `now`, unless it is over the limit and refused.
    /// A request whose clock read lies just before a boundary another worker
    /// has already crossed is counted in the newer period (never resetting it).
    pub fn count(&self, params: &QuotaParams, now: i64) -> QuotaVerdict {
        let tag = period_number(params.period, now) as u64 & TAG_MASK;
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let stored = tag_of(state);
            let counted = state & COUNT_MASK > 0;
            let (tag, used) = if stored == tag || (counted && is_after(stored, tag)) {
                (stored, state & COUNT_MASK)
            } else {
                (tag, 0)
            };
            let over = used >= params.limit;
            if over && params.on_breach == OnBreach::Reject {
                return QuotaVerdict::Refused;
            }
            let next = pack_tag(tag, used + 1);
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if over => return QuotaVerdict::Breached { used: used + 1 },
                Ok(_) => return QuotaVerdict::Within { used: used + 1 },
                Err(actual) => state = actual,
            }
        }
    }

    /// Adds `n` requests counted elsewhere in period number `period`: to the
    /// count if this counter is in that period, as the new count if it is in
    /// an older one; ignored if it has moved on to a later period.
    pub fn add(&self, period: i64, n: u64) {
        let tag = period as u64 & TAG_MASK;
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let stored = tag_of(state);
            let next = if stored == tag {
                pack_tag(tag, (state & COUNT_MASK).saturating_add(n))
            } else if is_after(tag, stored) || state & COUNT_MASK == 0 {
                pack_tag(tag, n)
            } else {
                return;
            };
            match self
                .state
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
    }

    /// Requests counted in the period containing `now`.
    pub fn used(&self, period: QuotaPeriod, now: i64) -> u64 {
        let state = self.state.load(Ordering::Relaxed);
        let tag = period_number(period, now) as u64 & TAG_MASK;
        if tag_of(state) == tag {
            state & COUNT_MASK
        } else {
            0
        }
    }
}

/// The number of the period containing Unix second `now`.
pub fn period_number(period: QuotaPeriod, now: i64) -> i64 {
    let days = now.div_euclid(86_400);
    match period {
        QuotaPeriod::Minute => now.div_euclid(60),
        QuotaPeriod::Hour => now.div_euclid(3600),
        QuotaPeriod::Day => days,
        // 1970-01-01 was a Thursday; weeks start on Monday.
        QuotaPeriod::Week => (days + 3).div_euclid(7),
        QuotaPeriod::Month => {
            let (year, month, _) = civil_from_days(days);
            year * 12 + i64::from(month) - 1
        }
    }
}

/// Unix second at which period number `n` starts.
pub fn period_start(period: QuotaPeriod, n: i64) -> i64 {
    match period {
        QuotaPeriod::Minute => n * 60,
        QuotaPeriod::Hour => n * 3600,
        QuotaPeriod::Day => n * 86_400,
        QuotaPeriod::Week => (n * 7 - 3) * 86_400,
        QuotaPeriod::Month => {
            days_from_civil(n.div_euclid(12), (n.rem_euclid(12) + 1) as u32, 1) * 86_400
        }
    }
}

/// Unix second at which the period containing `now` ends (the next reset).
pub fn next_reset(period: QuotaPeriod, now: i64) -> i64 {
    period_start(period, period_number(period, now) + 1)
}

/// Nominal length of a period in seconds (for `RateLimit-Policy`'s `w`).
pub fn nominal_seconds(period: QuotaPeriod) -> u64 {
    match period {
        QuotaPeriod::Minute => 60,
        QuotaPeriod::Hour => 3600,
        QuotaPeriod::Day => 86_400,
        QuotaPeriod::Week => 604_800,
        QuotaPeriod::Month => 2_592_000,
    }
}

pub fn period_name(period: QuotaPeriod) -> &'static str {
    match period {
        QuotaPeriod::Minute => "minute",
        QuotaPeriod::Hour => "hour",
        QuotaPeriod::Day => "day",
        QuotaPeriod::Week => "week",
        QuotaPeriod::Month => "month",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-22 (a Sunday) 13:45:30 UTC.
    const NOW: i64 = 1_795_355_130;

    fn params(limit: u64, period: QuotaPeriod, on_breach: OnBreach) -> QuotaParams {
        QuotaParams {
            limit,
            period,
            on_breach,
        }
    }

    // Each period resets on its UTC calendar boundary.
    #[test]
    fn resets_on_calendar_boundaries() {
        let resets = [
            QuotaPeriod::Minute,
            QuotaPeriod::Hour,
            QuotaPeriod::Day,
            QuotaPeriod::Week,
            QuotaPeriod::Month,
        ]
        .map(|p| next_reset(p, NOW));
        let day = days_from_civil(2026, 11, 22) * 86_400;
        assert_eq!(
            resets,
            [
                day + 13 * 3600 + 46 * 60,
                day + 14 * 3600,
                day + 86_400,
                // Monday 2026-11-23.
                days_from_civil(2026, 11, 23) * 86_400,
                days_from_civil(2026, 12, 1) * 86_400,
            ]
        );
    }

    // December rolls over into January of the next year.
    #[test]
    fn month_rolls_over_the_year() {
        let dec = days_from_civil(2026, 12, 15) * 86_400;
        assert_eq!(
            next_reset(QuotaPeriod::Month, dec),
            days_from_civil(2027, 1, 1) * 86_400
        );
    }

    // `reject` refuses the request after the limit and does not count it.
    #[test]
    fn reject_refuses_over_limit() {
        let counter = QuotaCounter::default();
        let p = params(2, QuotaPeriod::Day, OnBreach::Reject);
        let verdicts = [0; 3].map(|_| counter.count(&p, NOW));
        assert_eq!(
            (verdicts, counter.used(QuotaPeriod::Day, NOW)),
            (
                [
                    QuotaVerdict::Within { used: 1 },
                    QuotaVerdict::Within { used: 2 },
                    QuotaVerdict::Refused
                ],
                2
            )
        );
    }

    // `allow` lets the request through, counted and flagged.
    #[test]
    fn allow_counts_and_flags() {
        let counter = QuotaCounter::default();
        let p = params(1, QuotaPeriod::Day, OnBreach::Allow);
        counter.count(&p, NOW);
        assert_eq!(counter.count(&p, NOW), QuotaVerdict::Breached { used: 2 });
    }

    // A new period starts from zero: the injected clock crosses midnight.
    #[test]
    fn count_resets_at_midnight() {
        let counter = QuotaCounter::default();
        let p = params(1, QuotaPeriod::Day, OnBreach::Reject);
        counter.count(&p, NOW);
        let refused = counter.count(&p, NOW);
        let after_midnight = counter.count(&p, next_reset(QuotaPeriod::Day, NOW));
        assert_eq!(
            (refused, after_midnight),
            (QuotaVerdict::Refused, QuotaVerdict::Within { used: 1 })
        );
    }

    // A raised limit applies to the count already made.
    #[test]
    fn raised_limit_applies_to_current_count() {
        let counter = QuotaCounter::seeded(period_number(QuotaPeriod::Hour, NOW), 5);
        let low = counter.count(&params(5, QuotaPeriod::Hour, OnBreach::Reject), NOW);
        let high = counter.count(&params(10, QuotaPeriod::Hour, OnBreach::Reject), NOW);
        assert_eq!(
            (low, high),
            (QuotaVerdict::Refused, QuotaVerdict::Within { used: 6 })
        );
    }

    // A request that read the clock before a boundary another worker already
    // crossed counts in the new period instead of resetting it.
    #[test]
    fn late_clock_read_does_not_reset_new_period() {
        let counter = QuotaCounter::default();
        let p = params(100, QuotaPeriod::Minute, OnBreach::Reject);
        let boundary = next_reset(QuotaPeriod::Minute, NOW);
        for _ in 0..7 {
            counter.count(&p, boundary);
        }
        counter.count(&p, boundary - 1);
        assert_eq!(counter.used(QuotaPeriod::Minute, boundary), 8);
    }

    // A drain delta for the current period replaces a count two periods old.
    #[test]
    fn delta_replaces_an_old_period() {
        let now = period_number(QuotaPeriod::Minute, NOW);
        let counter = QuotaCounter::seeded(now - 2, 9);
        counter.add(now, 5);
        counter.add(now - 1, 100);
        assert_eq!(counter.used(QuotaPeriod::Minute, NOW), 5);
    }

    // Concurrent counting loses nothing.
    #[test]
    fn concurrent_counts_are_exact() {
        let counter = std::sync::Arc::new(QuotaCounter::default());
        let p = params(u64::MAX >> 30, QuotaPeriod::Day, OnBreach::Reject);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        counter.count(&p, NOW);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(counter.used(QuotaPeriod::Day, NOW), 40_000);
    }
}
