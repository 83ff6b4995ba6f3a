//! One measured run against one peer: the harness as a child process pinned
//! to the load cores, one thread per core (its JSON result read back), the
//! proxy's CPU time around it (all its processes and threads), and optionally
//! wrk with the same connections, duration and threads.

use super::counters::Extra;
use super::cpus::CpuList;
use super::file::Scenario;
use super::peers::Peer;
use super::procs;
use crate::report::RunResult;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// What one peer did in one round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub peer: String,
    pub round: usize,
    pub result: RunResult,
    /// CPU seconds the proxy used during the measured run.
    pub proxy_cpu_s: f64,
    /// wrk's requests per second in the same round (closed loop only).
    pub wrk_rps: Option<f64>,
    /// Idle connections held during the run and the proxy's RSS (KiB) before and after opening them.
    pub idle: Option<IdleMemory>,
    /// What `[measure]` adds: 2xx answers per counter increment, Redis figures.
    #[serde(default)]
    pub extras: Vec<Extra>,
    /// Redis commands during the measured run, by name (`[measure] redis`).
    #[serde(default)]
    pub redis_commands: Option<BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleMemory {
    pub connections: usize,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
}

impl IdleMemory {
    pub fn kib_per_connection(&self) -> f64 {
        self.rss_after_kib.saturating_sub(self.rss_before_kib) as f64
            / self.connections.max(1) as f64
    }
}

/// The load's URL on a peer.
pub fn url(scenario: &Scenario, peer: &Peer) -> String {
    let scheme = if scenario.file.tls { "https" } else { "http" };
    format!(
        "{scheme}://127.0.0.1:{}{}",
        peer.port, scenario.file.load.path
    )
}

/// Runs the harness against `peer` for `duration`; returns its result.
pub fn harness(
    scenario: &Scenario,
    peer: &Peer,
    duration: Duration,
    cpus: &CpuList,
    ca_file: Option<&Path>,
    json: &Path,
) -> anyhow::Result<RunResult> {
    let load = &scenario.file.load;
    let mut args: Vec<String> = vec![
        url(scenario, peer),
        "--connections".into(),
        load.connections.to_string(),
        "--threads".into(),
        load_threads(scenario, cpus).to_string(),
        "--duration".into(),
        format!("{}ms", duration.as_millis()),
        "--timeout".into(),
        "5s".into(),
        "--quiet".into(),
        "--label".into(),
        peer.name.clone(),
        "--method".into(),
        load.method.clone(),
        "--json".into(),
        json.display().to_string(),
    ];
    if let Some(rate) = load.rate {
        args.extend(["--rate".into(), rate.to_string()]);
    }
    if !load.keepalive {
        args.push("--no-keepalive".into());
    }
    if let Some(ca) = ca_file {
        args.extend(["--tls".into(), "--ca".into(), ca.display().to_string()]);
        args.extend(["--server-name".into(), "localhost".into()]);
    }
    for header in &load.headers {
        args.extend(["--header".into(), header.clone()]);
    }
    if let Some(body) = &load.body {
        args.extend(["--body".into(), body.clone()]);
    }
    let exe = std::env::current_exe().context("locating portcullis-load")?;
    procs::run_pinned(
        cpus,
        &exe.display().to_string(),
        &args,
        duration + Duration::from_secs(30),
    )?;
    let text =
        std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", json.display()))
}

/// The harness run with the proxy's CPU time measured around it.
pub fn measured(
    scenario: &Scenario,
    peer: &Peer,
    cpus: &CpuList,
    ca_file: Option<&Path>,
    json: &Path,
) -> anyhow::Result<(RunResult, f64)> {
    let before = procs::tree_cpu_seconds(peer.pid).unwrap_or(0.0);
    let result = harness(scenario, peer, scenario.duration, cpus, ca_file, json)?;
    let after = procs::tree_cpu_seconds(peer.pid).unwrap_or(before);
    Ok((result, after - before))
}

/// wrk's requests per second against `peer` (same connections, duration,
/// headers and threads).
pub fn wrk(scenario: &Scenario, peer: &Peer, cpus: &CpuList) -> anyhow::Result<f64> {
    let load = &scenario.file.load;
    let mut args: Vec<String> = vec![
        format!("-t{}", load_threads(scenario, cpus)),
        format!("-c{}", load.connections),
        format!("-d{}s", scenario.duration.as_secs().max(1)),
    ];
    for header in &load.headers {
        args.extend(["-H".into(), header.clone()]);
    }
    args.push(url(scenario, peer));
    let out = procs::run_pinned(
        cpus,
        "wrk",
        &args,
        scenario.duration + Duration::from_secs(30),
    )?;
    out.lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("no Requests/sec in wrk's output:\n{out}"))
}

/// Load threads: one per load core, at most one per connection.
fn load_threads(scenario: &Scenario, cpus: &CpuList) -> usize {
    cpus.count().min(scenario.file.load.connections).max(1)
}
