//! One round of one peer: a warm-up run (thrown away), idle connections
//! opened where the scenario holds them, then the measured run (and wrk, the
//! cross-check), with what `[measure]` names read before and after it.

use super::counters;
use super::measure::{self, IdleMemory, Sample};
use super::peers::{Ctx, Peer};
use super::procs;
use super::{interrupted, ScenarioArgs};
use crate::scenario::file::Scenario;
use anyhow::Context;
use std::time::Duration;

/// Warm-up, then the measured run (and wrk), with idle connections held if the scenario asks.
pub fn one_round(
    scenario: &Scenario,
    peer: &Peer,
    round: usize,
    args: &ScenarioArgs,
    ctx: &Ctx,
    exe: &str,
    redis_port: Option<u16>,
) -> anyhow::Result<Sample> {
    let json = ctx.run_dir.join(format!("{}-{round}.json", peer.name));
    let ca = ctx.ca_file.as_deref();
    if !scenario.warmup.is_zero() {
        measure::harness(scenario, peer, scenario.warmup, &args.load_cpus, ca, &json)?;
    }
    let idle_count = scenario.file.load.idle_connections;
    let mut idle = None;
    let mut holder = None;
    if idle_count > 0 {
        let before = procs::tree_rss_kib(peer.pid).unwrap_or(0);
        let hold = scenario.warmup + scenario.duration + Duration::from_secs(60);
        let log = ctx.run_dir.join(format!("idle-{}-{round}.log", peer.name));
        let idle_args = vec![
            "idle".to_string(),
            measure::url(scenario, peer),
            "--connections".to_string(),
            idle_count.to_string(),
            "--hold".to_string(),
            format!("{}s", hold.as_secs()),
        ];
        let mut proc = procs::spawn("idle", &args.load_cpus, exe, &idle_args, &log, &[])?;
        let started = std::time::Instant::now();
        loop {
            proc.check_alive()
                .with_context(|| std::fs::read_to_string(&log).unwrap_or_default())?;
            if std::fs::read_to_string(&log).is_ok_and(|t| t.contains("READY")) {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) || interrupted() {
                anyhow::bail!("idle connections not all open after 120 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_secs(2));
        let after = procs::tree_rss_kib(peer.pid).unwrap_or(0);
        idle = Some(IdleMemory {
            connections: idle_count,
            rss_before_kib: before,
            rss_after_kib: after,
        });
        holder = Some(proc);
    }
    // wrk (the cross-check) runs next to the measured run, before it in even
    // rounds and after it in odd ones, so that drift in the machine's load
    // does not favour either tool.
    let with_wrk = scenario.file.load.wrk && scenario.file.load.rate.is_none();
    let mut wrk_rps = None;
    if with_wrk && round.is_multiple_of(2) {
        wrk_rps = Some(measure::wrk(scenario, peer, &args.load_cpus)?);
    }
    let before = counters::read(scenario, peer, redis_port)?;
    let (result, proxy_cpu_s) = measure::measured(scenario, peer, &args.load_cpus, ca, &json)?;
    let after = counters::read(scenario, peer, redis_port)?;
    let (extras, redis_commands) = counters::extras(scenario, &before, &after, result.ok_answers());
    if with_wrk && !round.is_multiple_of(2) {
        wrk_rps = Some(measure::wrk(scenario, peer, &args.load_cpus)?);
    }
    drop(holder);
    Ok(Sample {
        peer: peer.name.clone(),
        round,
        result,
        proxy_cpu_s,
        wrk_rps,
        idle,
        extras,
        redis_commands,
    })
}
