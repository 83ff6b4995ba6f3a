//! A scenario's result: medians over the rounds per peer, ratios to the
//! baseline peer (nginx unless the scenario names another), the `[measure]`
//! figures as extra columns, printed as a table and written as `table.md`, `result.json` (every run)
//! and `report.html` (plots of each peer's run nearest its median p99).

use super::file::Scenario;
use super::measure::Sample;
use crate::report::html;
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// Medians of one peer over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct PeerMedians {
    pub peer: String,
    pub rounds: usize,
    pub req_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Failed requests plus answers other than 2xx, summed over the rounds.
    pub errors_and_non_2xx: u64,
    /// Requests per CPU-second of the proxy.
    pub req_per_proxy_cpu_s: f64,
    /// Requests per CPU-second of the load generator (harness).
    pub req_per_load_cpu_s: f64,
    pub wrk_req_per_s: Option<f64>,
    /// Median over the rounds of the harness's req/s ÷ wrk's in the same round.
    pub harness_over_wrk: Option<f64>,
    pub idle_kib_per_connection: Option<f64>,
    /// `[measure]` figures by label: medians over the rounds that have one.
    pub extras: Vec<(String, Option<f64>)>,
    /// Where the scenario names a baseline: this peer's requests per
    /// proxy-CPU-second ÷ the baseline's in the same round, median, least
    /// and most over the rounds. Drift of the machine's load between rounds
    /// cancels out of it.
    pub per_cpu_paired: Option<[f64; 3]>,
}

#[derive(Serialize)]
struct Written<'a> {
    scenario: &'a str,
    description: &'a str,
    command: &'a str,
    machine: String,
    rounds: usize,
    medians: &'a [PeerMedians],
    skipped: Vec<(String, String)>,
    samples: &'a [Sample],
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn medians(peer: &str, samples: &[&Sample], extra_labels: &[String]) -> PeerMedians {
    let of = |f: &dyn Fn(&Sample) -> f64| median(samples.iter().map(|s| f(s)).collect());
    let wrk: Vec<f64> = samples.iter().filter_map(|s| s.wrk_rps).collect();
    let over_wrk: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.wrk_rps.map(|w| s.result.achieved_rate / w))
        .collect();
    let idle: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.idle.as_ref().map(|i| i.kib_per_connection()))
        .collect();
    PeerMedians {
        peer: peer.to_string(),
        rounds: samples.len(),
        req_per_s: of(&|s| s.result.achieved_rate),
        p50_ms: of(&|s| s.result.latency_ms.p50),
        p90_ms: of(&|s| s.result.latency_ms.p90),
        p99_ms: of(&|s| s.result.latency_ms.p99),
        p999_ms: of(&|s| s.result.latency_ms.p999),
        max_ms: of(&|s| s.result.latency_ms.max),
        errors_and_non_2xx: samples
            .iter()
            .map(|s| {
                let non_2xx: u64 = s
                    .result
                    .statuses
                    .iter()
                    .filter(|(code, _)| !code.starts_with('2'))
                    .map(|(_, n)| n)
                    .sum();
                s.result.errors_total + non_2xx
            })
            .sum(),
        req_per_proxy_cpu_s: of(&per_cpu),
        req_per_load_cpu_s: of(&|s| s.result.answers as f64 / s.result.cpu_seconds),
        wrk_req_per_s: (!wrk.is_empty()).then(|| median(wrk)),
        harness_over_wrk: (!over_wrk.is_empty()).then(|| median(over_wrk)),
        idle_kib_per_connection: (!idle.is_empty()).then(|| median(idle)),
        extras: extra_labels
            .iter()
            .map(|label| {
                let values: Vec<f64> = samples
                    .iter()
                    .flat_map(|s| &s.extras)
                    .filter(|e| &e.label == label)
                    .filter_map(|e| e.value)
                    .collect();
                (label.clone(), (!values.is_empty()).then(|| median(values)))
            })
            .collect(),
        per_cpu_paired: None,
    }
}

/// Requests per proxy-CPU-second of a sample.
fn per_cpu(s: &Sample) -> f64 {
    s.result.answers as f64 / s.proxy_cpu_s
}

/// `peer`'s per-CPU figure ÷ `base`'s in the same round, over the rounds
/// both ran: median, least, most.
fn paired(samples: &[Sample], peer: &str, base: &str) -> Option<[f64; 3]> {
    let ratios: Vec<f64> = samples
        .iter()
        .filter(|s| s.peer == peer)
        .filter_map(|s| {
            let b = samples
                .iter()
                .find(|b| b.peer == base && b.round == s.round)?;
            Some(per_cpu(s) / per_cpu(b))
        })
        .filter(|r| r.is_finite())
        .collect();
    if ratios.is_empty() {
        return None;
    }
    let least = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let most = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some([median(ratios), least, most])
}

/// A `[measure]` figure: three significant digits, no fewer than whole numbers.
fn figure(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".to_string(),
    }
}

/// What the rounds gave: every sample, the peers in the scenario's order,
/// and the skipped peers with why.
pub struct Outcome<'a> {
    pub rounds: usize,
    pub samples: &'a [Sample],
    pub order: &'a [String],
    pub skipped: &'a [(String, String)],
}

/// Builds, prints and writes the scenario's result; returns the markdown table.
pub fn write(
    scenario: &Scenario,
    outcome: &Outcome,
    out_dir: &Path,
    command: &str,
    placement: &str,
) -> anyhow::Result<String> {
    let Outcome {
        rounds,
        samples,
        order,
        skipped,
    } = *outcome;
    let mut peers: Vec<String> = Vec::new();
    for s in samples {
        if !peers.contains(&s.peer) {
            peers.push(s.peer.clone());
        }
    }
    peers.sort_by_key(|p| order.iter().position(|o| o == p).unwrap_or(usize::MAX));
    let mut extra_labels: Vec<String> = Vec::new();
    for extra in samples.iter().flat_map(|s| &s.extras) {
        if !extra_labels.contains(&extra.label) {
            extra_labels.push(extra.label.clone());
        }
    }
    let base_name = scenario.file.baseline.as_deref().unwrap_or("nginx");
    let all: Vec<PeerMedians> = peers
        .iter()
        .map(|p| {
            let mut m = medians(
                p,
                &samples.iter().filter(|s| &s.peer == p).collect::<Vec<_>>(),
                &extra_labels,
            );
            if scenario.file.baseline.is_some() {
                m.per_cpu_paired = paired(samples, p, base_name);
            }
            m
        })
        .collect();
    let has_paired = all.iter().any(|m| m.per_cpu_paired.is_some());
    let baseline = all.iter().find(|m| m.peer == base_name);
    let has_wrk = all.iter().any(|m| m.wrk_req_per_s.is_some());
    let has_idle = all.iter().any(|m| m.idle_kib_per_connection.is_some());
    let mut header: Vec<String> = [
        "peer",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors+non-2xx",
        "req per proxy-CPU-s",
    ]
    .map(String::from)
    .to_vec();
    for ratio in ["req/s", "p99", "per-CPU"] {
        header.push(format!("{ratio} ÷ {base_name}"));
    }
    if has_paired {
        header.push(format!("per-CPU ÷ {base_name}, same round: median (range)"));
    }
    if has_wrk {
        header.extend(["wrk req/s".into(), "harness ÷ wrk (per round)".into()]);
    }
    if has_idle {
        header.push("KiB per idle conn".into());
    }
    header.extend(extra_labels.iter().cloned());
    header.push("req per load-CPU-s".into());
    let mut rows: Vec<Vec<String>> = Vec::new();
    for m in &all {
        let mut row = vec![
            m.peer.clone(),
            format!("{:.0}", m.req_per_s),
            format!("{:.3}", m.p50_ms),
            format!("{:.3}", m.p90_ms),
            format!("{:.3}", m.p99_ms),
            format!("{:.3}", m.p999_ms),
            format!("{:.3}", m.max_ms),
            m.errors_and_non_2xx.to_string(),
            format!("{:.0}", m.req_per_proxy_cpu_s),
            ratio(m.req_per_s, baseline.map(|n| n.req_per_s)),
            ratio(m.p99_ms, baseline.map(|n| n.p99_ms)),
            ratio(
                m.req_per_proxy_cpu_s,
                baseline.map(|n| n.req_per_proxy_cpu_s),
            ),
        ];
        if has_paired {
            row.push(
                m.per_cpu_paired
                    .map(|[mid, least, most]| format!("{mid:.3} ({least:.2}–{most:.2})"))
                    .unwrap_or_else(|| "–".into()),
            );
        }
        if has_wrk {
            row.push(
                m.wrk_req_per_s
                    .map(|w| format!("{w:.0}"))
                    .unwrap_or_default(),
            );
            row.push(
                m.harness_over_wrk
                    .map(|r| format!("{r:.2}"))
                    .unwrap_or_default(),
            );
        }
        if has_idle {
            row.push(
                m.idle_kib_per_connection
                    .map(|k| format!("{k:.2}"))
                    .unwrap_or_default(),
            );
        }
        for (_, value) in &m.extras {
            row.push(value.map(figure).unwrap_or_else(|| "–".into()));
        }
        row.push(format!("{:.0}", m.req_per_load_cpu_s));
        rows.push(row);
    }
    let load = &scenario.file.load;
    let mode = match load.rate {
        Some(rate) => format!("open loop at {rate:.0} req/s"),
        None => "closed loop".into(),
    };
    let setup = format!(
        "{mode}, {} connections{}, {} s per run after a {} s warm-up, {rounds} interleaved round{}, medians{}; {placement}",
        load.connections,
        if load.keepalive { "" } else { " (no keep-alive)" },
        scenario.duration.as_secs_f64(),
        scenario.warmup.as_secs_f64(),
        if rounds == 1 { "" } else { "s" },
        if load.idle_connections > 0 {
            format!(", {} idle keep-alive connections held during the load", load.idle_connections)
        } else {
            String::new()
        }
    );
    let mut md = String::new();
    let _ = writeln!(
        md,
        "### Scenario `{}`\n\n{}\n\n{setup}.\n",
        scenario.name,
        scenario.file.description.trim()
    );
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len()));
    for row in &rows {
        let _ = writeln!(md, "| {} |", row.join(" | "));
    }
    for (peer, reason) in skipped {
        let _ = writeln!(md, "| {peer} | {reason} |{}", " |".repeat(header.len() - 2));
    }
    let notes: Vec<String> = [&scenario.file.nginx.note, &scenario.file.haproxy.note]
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| n.trim().to_string())
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(md);
        for note in &notes {
            let _ = writeln!(md, "- {note}");
        }
    }
    println!("{md}");

    let written = Written {
        scenario: &scenario.name,
        description: scenario.file.description.trim(),
        command,
        machine: machine(),
        rounds,
        medians: &all,
        skipped: skipped.to_vec(),
        samples,
    };
    std::fs::write(
        out_dir.join("result.json"),
        serde_json::to_string_pretty(&written)?,
    )?;
    std::fs::write(out_dir.join("table.md"), &md)?;

    // Plots: each peer's run whose p99 is nearest its median p99.
    let chosen: Vec<&Sample> = all
        .iter()
        .filter_map(|m| {
            samples.iter().filter(|s| s.peer == m.peer).min_by(|a, b| {
                (a.result.latency_ms.p99 - m.p99_ms)
                    .abs()
                    .total_cmp(&(b.result.latency_ms.p99 - m.p99_ms).abs())
            })
        })
        .collect();
    let mut page_notes = vec![
        scenario.file.description.trim().to_string(),
        setup,
        format!("Command: {command}"),
    ];
    page_notes.push(format!("Machine: {}", machine()));
    page_notes.extend(skipped.iter().map(|(p, r)| format!("{p}: {r}")));
    page_notes.extend(notes);
    let page = html::Page {
        title: &format!("Scenario {}", scenario.name),
        notes: page_notes,
        table: (header, rows),
        series: chosen
            .iter()
            .map(|s| html::Series {
                label: &s.peer,
                percentiles: &s.result.percentiles,
                per_second: &s.result.per_second,
                elapsed_s: s.result.elapsed_s,
            })
            .collect(),
    };
    std::fs::write(out_dir.join("report.html"), html::render(&page))?;
    eprintln!(
        "wrote {}/{{table.md,result.json,report.html}}",
        out_dir.display()
    );
    Ok(md)
}

/// CPU model and count, kernel and memory, in one line.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| format!("{:.1} GiB", kib as f64 / 1048576.0))
        .unwrap_or_default();
    format!("{cpus} vCPU {model}, {mem} RAM, Linux {}", kernel.trim())
}
