//! Rules of the per-worker request tally: counts stay with the worker until
//! its tick, every worker's counts add up, and a reload loses none.

use super::*;
use crate::policy::usage::{compile_usage, UsageRegistry};
use crate::time::clock::Now;
use std::path::Path;

/// Subscribers `a` and `b` on plan `p`, for deployment `d`.
const CONFIG: &str = "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n[[deployments]]\nname = \"d\"\nlistener = \"l\"\nusage_plans = { token_locations = [\"header:X-Token\"] }\n[[deployments.routes]]\npath = \"/\"\nbackend = { type = \"stock\", status = 200 }\n[[usage_plans]]\nname = \"p\"\n[[usage_plans.entitlements]]\nname = \"e\"\ndeployments = [\"d\"]\n[[subscribers]]\nname = \"a\"\nusage_plans = [\"p\"]\nclients = [{ name = \"c\", token = \"0123456789abcdef-a\" }]\n[[subscribers]]\nname = \"b\"\nusage_plans = [\"p\"]\nclients = [{ name = \"c\", token = \"0123456789abcdef-b\" }]\n";

const NOW: Now = Now {
    mono_ns: 1,
    unix_secs: 1_790_000_000,
};

/// The usage plans of `CONFIG`, compiled afresh (a new generation each time)
/// and given the running counters by `registry`, as a reload does.
fn plans(registry: &UsageRegistry) -> UsageSpec {
    let config = crate::config::parse_str(CONFIG, Path::new("t.toml")).unwrap();
    let mut usage = compile_usage(&config, &["d"], &mut Vec::new()).unwrap();
    registry.attach(std::iter::empty(), &mut usage, NOW);
    usage
}

/// The shared totals of `a` and `b`.
fn totals(usage: &UsageSpec) -> (u64, u64) {
    let total = |s: usize| usage.subscribers[s].requests.load(Ordering::Relaxed);
    (total(0), total(1))
}

// Rule: counting touches only the worker's tally; its flush adds the counts to the shared totals.
#[test]
fn counts_reach_the_shared_total_at_the_flush() {
    let usage = plans(&UsageRegistry::default());
    let tally = RequestTally::default();
    for subscriber in [0, 0, 1, 0] {
        tally.count(&usage, subscriber);
    }
    let before = totals(&usage);
    tally.flush();
    tally.flush();
    assert_eq!((before, totals(&usage)), ((0, 0), (3, 1)));
}

// Rule: the totals are the sum of every worker's counts, flushed or counted again later.
#[test]
fn workers_counts_add_up() {
    let usage = plans(&UsageRegistry::default());
    let workers = [RequestTally::default(), RequestTally::default()];
    for round in 0..3 {
        for (w, tally) in workers.iter().enumerate() {
            for _ in 0..=w + round {
                tally.count(&usage, 0);
            }
            tally.flush();
        }
    }
    // Worker 0 counts 1 + 2 + 3, worker 1 counts 2 + 3 + 4.
    assert_eq!(totals(&usage), (15, 0));
}

// Rule: counts made under the plans before a reload reach the counters the
// reload kept, at the first count under the new plans; none is lost.
#[test]
fn reload_flushes_the_previous_plans_counts() {
    let registry = UsageRegistry::default();
    let before = plans(&registry);
    let after = plans(&registry);
    let tally = RequestTally::default();
    tally.count(&before, 0);
    tally.count(&before, 1);
    tally.count(&after, 0);
    let at_reload = totals(&after);
    tally.flush();
    assert_eq!((at_reload, totals(&after)), ((1, 1), (2, 1)));
}

// Rule: a subscriber index the plans do not have is not counted (and does not panic).
#[test]
fn unknown_subscriber_is_not_counted() {
    let usage = plans(&UsageRegistry::default());
    let tally = RequestTally::default();
    tally.count(&usage, 2);
    tally.count(&usage, u32::MAX);
    tally.flush();
    assert_eq!(totals(&usage), (0, 0));
}
