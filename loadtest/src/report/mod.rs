//! A run's result as data ([`RunResult`], the JSON file's schema), and its
//! three renderings: the summary table, the JSON file and the HTML report.

pub mod html;
pub mod table;

use crate::engine::Finished;
use crate::spec::{LoadSpec, Mode};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// One point of the latency-by-percentile curve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PercentilePoint {
    /// 0 to 100.
    pub percentile: f64,
    pub latency_ms: f64,
}

/// Everything a run measured; written as the `--json` file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub label: String,
    pub url: String,
    /// "closed" or "open".
    pub mode: String,
    /// Open loop: the requested rate (requests per second).
    pub target_rate: Option<f64>,
    pub connections: usize,
    pub threads: usize,
    pub keepalive: bool,
    pub duration_s: f64,
    pub elapsed_s: f64,
    /// Requests that got a complete answer (any status).
    pub answers: u64,
    /// Requests that got none (see `errors`).
    pub errors_total: u64,
    /// Answers per second of elapsed time.
    pub achieved_rate: f64,
    pub latency_ms: Latency,
    /// Answers by status code.
    pub statuses: BTreeMap<String, u64>,
    /// Failed requests by kind.
    pub errors: BTreeMap<String, u64>,
    /// Latency by percentile, HdrHistogram style (for the plot).
    pub percentiles: Vec<PercentilePoint>,
    /// Completed requests per second since the start.
    pub per_second: Vec<u64>,
    /// CPU seconds the harness used (user + system) during the run.
    pub cpu_seconds: f64,
}

impl RunResult {
    /// Answers with a 2xx status.
    pub fn ok_answers(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(code, _)| code.starts_with('2'))
            .map(|(_, n)| n)
            .sum()
    }

    pub fn new(spec: &LoadSpec, url: &str, label: &str, finished: &Finished) -> RunResult {
        let h = &finished.recorder.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let at = |q: f64| ms(h.value_at_quantile(q));
        let answers = finished.recorder.answers();
        let elapsed = finished.elapsed.as_secs_f64();
        let (mode, target_rate) = match spec.mode {
            Mode::Closed => ("closed", None),
            Mode::Open { rate } => ("open", Some(rate)),
        };
        RunResult {
            label: label.to_string(),
            url: url.to_string(),
            mode: mode.to_string(),
            target_rate,
            connections: spec.connections,
            threads: spec.threads,
            keepalive: spec.keepalive,
            duration_s: spec.duration.as_secs_f64(),
            elapsed_s: elapsed,
            answers,
            errors_total: finished.recorder.error_count(),
            achieved_rate: if elapsed > 0.0 {
                answers as f64 / elapsed
            } else {
                0.0
            },
            latency_ms: Latency {
                mean: h.mean() / 1000.0,
                p50: at(0.5),
                p90: at(0.9),
                p99: at(0.99),
                p999: at(0.999),
                max: ms(h.max()),
            },
            statuses: finished.recorder.statuses(),
            errors: finished.recorder.errors(),
            percentiles: percentile_curve(h),
            per_second: finished.recorder.per_second.clone(),
            cpu_seconds: finished.cpu_seconds,
        }
    }
}

/// Latency at percentiles evenly spaced on the log scale of 1/(1-p), from
/// 0% to 99.9999% (as far as the sample count supports), plus the maximum.
fn percentile_curve(h: &hdrhistogram::Histogram<u64>) -> Vec<PercentilePoint> {
    if h.is_empty() {
        return Vec::new();
    }
    // 1/(1-p) can usefully go up to about the number of samples.
    let max_decades = (h.len() as f64).log10().clamp(1.0, 6.0);
    let steps = (max_decades * 20.0) as usize;
    let mut points: Vec<PercentilePoint> = (0..=steps)
        .map(|i| {
            let decades = max_decades * i as f64 / steps as f64;
            let q = 1.0 - 10f64.powf(-decades);
            PercentilePoint {
                percentile: q * 100.0,
                latency_ms: h.value_at_quantile(q) as f64 / 1000.0,
            }
        })
        .collect();
    points.push(PercentilePoint {
        percentile: 100.0,
        latency_ms: h.max() as f64 / 1000.0,
    });
    points
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat.
pub fn process_cpu_seconds() -> f64 {
    proc_cpu_seconds("self").unwrap_or(0.0)
}

/// CPU seconds (user + system) of process `pid` ("self" for this one).
pub fn proc_cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

/// Clock ticks per second (`getconf CLK_TCK`); 100 on every Linux we run on.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
