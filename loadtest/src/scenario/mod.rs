//! `portcullis-load scenario NAME…`: starts the scenario's services, the
//! upstream, the gateway peers (one or several configs), nginx and HAProxy
//! configured for the scenario (proxies on one core, load and upstream on the
//! other), runs the same load against each in interleaved rounds, and prints
//! one table of medians with ratios to the baseline (nginx unless the
//! scenario names another peer); writes the table, a JSON file of every run
//! and an HTML report to `OUT/NAME/`.
//!
//! Everything it starts is a child process stopped by its PID when the
//! scenario ends, fails or is interrupted (Ctrl-C). A scenario the gateway
//! refuses (a feature it does not have yet) is reported as skipped for the
//! gateway, naming the feature, and the other peers still run.

mod counters;
mod cpus;
mod file;
mod gateways;
mod measure;
mod peers;
mod procs;
mod round;
mod services;
mod start;
mod summary;

use anyhow::Context;
use clap::Args;
use cpus::CpuList;
use file::Scenario;
use measure::Sample;
use peers::Ctx;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

static INTERRUPTED: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Whether Ctrl-C (or SIGTERM) arrived.
pub fn interrupted() -> bool {
    INTERRUPTED
        .get()
        .is_some_and(|flag| flag.load(Ordering::Relaxed))
}

#[derive(Args)]
pub struct ScenarioArgs {
    /// Scenario names (files in --dir without .toml), or "all".
    #[arg(required = true)]
    names: Vec<String>,
    /// Rounds (default: the scenario's).
    #[arg(long)]
    rounds: Option<usize>,
    /// Measured duration of each run (default: the scenario's), e.g. 5s.
    #[arg(long, value_parser = crate::spec::parse_duration)]
    duration: Option<Duration>,
    /// Where the scenario files are.
    #[arg(long, default_value = "loadtest/scenarios")]
    dir: PathBuf,
    /// Where results go (a folder per scenario).
    #[arg(long, default_value = "loadtest/out")]
    out: PathBuf,
    /// The gateway binary (default: `portcullis` next to this binary).
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// Cores for the proxies under test (taskset list: 0, 2-5, 0,4): one
    /// gateway worker, nginx worker process or HAProxy thread per core.
    #[arg(long, visible_alias = "proxy-cpu", default_value = "0")]
    proxy_cpus: CpuList,
    /// Cores for the load (and the upstream, unless --upstream-cpus): one
    /// harness thread, and one wrk thread, per core.
    #[arg(long, visible_alias = "load-cpu", default_value = "1")]
    load_cpus: CpuList,
    /// Cores for the upstream, one upstream thread per core (default: the
    /// load's). Putting it on the proxy core leaves the load core to the load
    /// generator alone, so that the proxy's core is the limit: the setting for
    /// comparing load generators on a 2-core machine.
    #[arg(long, visible_alias = "upstream-cpu")]
    upstream_cpus: Option<CpuList>,
    /// Peers to run (default: all the scenario enables): portcullis, nginx, haproxy.
    #[arg(long, value_delimiter = ',')]
    peers: Option<Vec<String>>,
}

pub fn main(args: ScenarioArgs) -> anyhow::Result<()> {
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, flag.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, flag.clone())?;
    let _ = INTERRUPTED.set(flag);
    let names = if args.names.iter().any(|n| n == "all") {
        let mut names: Vec<String> = std::fs::read_dir(&args.dir)
            .with_context(|| format!("listing {}", args.dir.display()))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.strip_suffix(".toml").map(String::from)
            })
            .collect();
        names.sort();
        names
    } else {
        args.names.clone()
    };
    let gateway_bin = match &args.gateway_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .join("portcullis"),
    };
    check_online(&args)?;
    let mut tables = Vec::new();
    for name in &names {
        let scenario = Scenario::load(&args.dir.join(format!("{name}.toml")))?;
        let table = run_scenario(scenario, &args, &gateway_bin)
            .with_context(|| format!("scenario {name}"))?;
        tables.push(table);
        if interrupted() {
            anyhow::bail!("interrupted");
        }
    }
    if names.len() > 1 {
        let path = args.out.join("summary.md");
        std::fs::write(&path, tables.join("\n"))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Fails, naming the core, when a role is given a core this machine does not have.
fn check_online(args: &ScenarioArgs) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string("/sys/devices/system/cpu/online") else {
        return Ok(());
    };
    let Ok(online) = text.trim().parse::<CpuList>() else {
        return Ok(());
    };
    let roles = [
        ("--proxy-cpus", Some(&args.proxy_cpus)),
        ("--load-cpus", Some(&args.load_cpus)),
        ("--upstream-cpus", args.upstream_cpus.as_ref()),
    ];
    for (flag, cpus) in roles {
        for core in cpus.map(|c| c.cores()).unwrap_or(&[]) {
            if !online.cores().contains(core) {
                anyhow::bail!("{flag}: core {core} is not online here (online: {online})");
            }
        }
    }
    if args.proxy_cpus.overlaps(&args.load_cpus) {
        eprintln!(
            "note: the proxies and the load share cores ({} and {}): each slows the other",
            args.proxy_cpus, args.load_cpus
        );
    }
    Ok(())
}

/// Where each role runs, for the reports.
fn placement(args: &ScenarioArgs) -> String {
    let upstream = args.upstream_cpus.as_ref().unwrap_or(&args.load_cpus);
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    format!(
        "proxy on cores {} ({}), load on cores {} ({}), upstream on cores {} ({})",
        args.proxy_cpus,
        plural(args.proxy_cpus.count(), "worker", "workers"),
        args.load_cpus,
        plural(args.load_cpus.count(), "harness thread", "harness threads"),
        upstream,
        plural(upstream.count(), "thread", "threads"),
    )
}

/// Runs one scenario; returns its markdown table.
fn run_scenario(
    mut scenario: Scenario,
    args: &ScenarioArgs,
    gateway_bin: &Path,
) -> anyhow::Result<String> {
    if let Some(duration) = args.duration {
        scenario.duration = duration;
    }
    let rounds = args.rounds.unwrap_or(scenario.file.load.rounds).max(1);
    let out_dir = args.out.join(&scenario.name);
    std::fs::create_dir_all(&out_dir)?;
    let run = tempfile::Builder::new()
        .prefix("run.")
        .tempdir_in(&out_dir)
        .context("creating the run directory")?;
    eprintln!(
        "== scenario {}: {}",
        scenario.name,
        scenario.file.description.trim()
    );
    match run_in(&scenario, rounds, args, gateway_bin, run.path(), &out_dir) {
        Ok(table) if std::env::var_os("KEEP_RUN_DIR").is_none() => Ok(table),
        Ok(table) => {
            eprintln!("run directory kept: {}", run.keep().display());
            Ok(table)
        }
        Err(e) => Err(e.context(format!("configs and logs kept in {}", run.keep().display()))),
    }
}

/// The scenario's processes and rounds, in the run directory `run_dir`.
fn run_in(
    scenario: &Scenario,
    rounds: usize,
    args: &ScenarioArgs,
    gateway_bin: &Path,
    run_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<String> {
    if let Some(program) = services::missing_program(scenario) {
        let md = format!(
            "### Scenario `{}`\n\nskipped: it needs `{program}`, which is not in PATH.\n",
            scenario.name
        );
        println!("{md}");
        return Ok(md);
    }
    let (cert_file, key_file, ca_file) = if scenario.file.tls {
        let (c, k, ca) = peers::make_certificates(run_dir)?;
        (Some(c), Some(k), Some(ca))
    } else {
        (None, None, None)
    };
    // The upstream, the services and a gateway's other nodes share the load's
    // cores unless the upstream has its own.
    let upstream_cpus = args.upstream_cpus.as_ref().unwrap_or(&args.load_cpus);
    let (services, placeholders) = services::start(scenario, run_dir, upstream_cpus)?;
    let ctx = Ctx {
        run_dir: run_dir.to_path_buf(),
        upstream_ports: (0..scenario.file.upstream.ports)
            .map(|_| procs::free_port())
            .collect::<anyhow::Result<_>>()?,
        admin_port: procs::free_port()?,
        services: placeholders,
        cert_file,
        key_file,
        ca_file,
    };
    peers::write_generated(scenario, &ctx)?;

    let exe = std::env::current_exe()?.display().to_string();
    let mut upstream_args = vec!["upstream".to_string()];
    for port in &ctx.upstream_ports {
        upstream_args.extend(["--listen".to_string(), format!("127.0.0.1:{port}")]);
    }
    upstream_args.extend(["--threads".to_string(), upstream_cpus.count().to_string()]);
    if let Some(delay) = &scenario.file.upstream.delay {
        upstream_args.extend(["--delay".to_string(), delay.clone()]);
    }
    let mut upstream = procs::spawn(
        "upstream",
        upstream_cpus,
        &exe,
        &upstream_args,
        &run_dir.join("upstream.log"),
        &[],
    )?;
    for port in &ctx.upstream_ports {
        procs::wait_ready(&mut upstream, ([127, 0, 0, 1], *port).into(), "/", false)?;
    }

    let (mut started, skipped) = start::peers(scenario, args, gateway_bin, &ctx)?;
    let order: Vec<String> = started.iter().map(|p| p.name.clone()).collect();
    let redis_port = scenario
        .file
        .measure
        .redis
        .as_ref()
        .and_then(|name| services.iter().find(|s| &s.name == name).map(|s| s.port));

    let mut samples: Vec<Sample> = Vec::new();
    for round in 1..=rounds {
        let count = started.len().max(1);
        for i in 0..started.len() {
            if interrupted() {
                anyhow::bail!("interrupted");
            }
            let peer = &mut started[(i + round - 1) % count];
            peer.proc.check_alive()?;
            for helper in &mut peer.helpers {
                helper.check_alive()?;
            }
            upstream.check_alive()?;
            let sample = round::one_round(scenario, peer, round, args, &ctx, &exe, redis_port)?;
            eprintln!(
                "round {round}/{rounds} {:<10} {:>9.0} req/s  p50 {:.3} ms  p99 {:.3} ms  errors {}{}{}",
                sample.peer,
                sample.result.achieved_rate,
                sample.result.latency_ms.p50,
                sample.result.latency_ms.p99,
                sample.result.errors_total,
                sample.wrk_rps.map(|r| format!("  wrk {r:.0} req/s")).unwrap_or_default(),
                sample
                    .extras
                    .iter()
                    .filter_map(|e| e.value.map(|v| format!("  {} {v:.3}", e.label)))
                    .collect::<String>()
            );
            samples.push(sample);
        }
    }
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let outcome = summary::Outcome {
        rounds,
        samples: &samples,
        order: &order,
        skipped: &skipped,
    };
    let table = summary::write(scenario, &outcome, out_dir, &command, &placement(args))?;
    for mut peer in started {
        peer.proc.stop();
    }
    upstream.stop();
    for mut service in services {
        service.proc.stop();
    }
    Ok(table)
}
