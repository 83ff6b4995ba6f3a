//! The summary table printed at the end of a run.

use super::RunResult;
use std::fmt::Write;

/// The summary of one run as text.
pub fn summary(result: &RunResult) -> String {
    let mut s = String::new();
    let mode = match result.target_rate {
        Some(rate) => format!("open loop at {rate:.0} req/s"),
        None => "closed loop".to_string(),
    };
    let _ = writeln!(
        s,
        "{} — {mode}, {} connections, {} threads, {}, {:.1}s",
        result.url,
        result.connections,
        result.threads,
        if result.keepalive {
            "keep-alive"
        } else {
            "no keep-alive"
        },
        result.elapsed_s
    );
    let _ = writeln!(
        s,
        "  {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors"
    );
    let l = &result.latency_ms;
    let _ = writeln!(
        s,
        "  {:>12.0} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10}",
        result.achieved_rate, l.p50, l.p90, l.p99, l.p999, l.max, result.errors_total
    );
    let statuses: Vec<String> = result
        .statuses
        .iter()
        .map(|(code, n)| format!("{code}: {n}"))
        .collect();
    let _ = writeln!(
        s,
        "  answers {} by status: {}",
        result.answers,
        if statuses.is_empty() {
            "none".to_string()
        } else {
            statuses.join(", ")
        }
    );
    let errors: Vec<String> = result
        .errors
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect();
    let _ = writeln!(
        s,
        "  errors by kind: {}",
        if errors.is_empty() {
            "none".to_string()
        } else {
            errors.join(", ")
        }
    );
    s
}
