//! The command line: a load run (the default), or one of the subcommands
//! `upstream`, `idle` and `scenario`. Turns arguments into a [`LoadSpec`] and
//! the run's result into the table, JSON and HTML files asked for.

use crate::report::{html, table, RunResult};
use crate::spec::{parse_duration, LoadSpec, Mode, Target, TlsSpec};
use crate::{engine, idle, request, scenario, upstream};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Portcullis load-test harness: closed- or open-loop HTTP/1.1 load on
/// io_uring, coordinated-omission-correct latency, reports as a table, JSON
/// and HTML. Targets 127.0.0.1 only.
#[derive(Parser)]
#[command(
    name = "portcullis-load",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    load: LoadArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a fixed small 200 answer with keep-alive: the fast upstream scenarios proxy to.
    Upstream(upstream::UpstreamArgs),
    /// Open connections, send one request on each, and hold them idle.
    Idle(idle::IdleArgs),
    /// Run a scenario from loadtest/scenarios: the gateway, nginx and HAProxy under the same load.
    Scenario(scenario::ScenarioArgs),
}

/// A load run.
#[derive(Args)]
struct LoadArgs {
    /// Target URL (http:// or https://, loopback only), e.g. http://127.0.0.1:8080/bench/hello
    #[arg(required = true)]
    url: Option<String>,
    /// Concurrent connections.
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// Load threads, each with its own io_uring runtime.
    #[arg(long, short = 't', default_value_t = 1)]
    threads: usize,
    /// How long to send requests (e.g. 10s, 500ms, 1m).
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many requests in all.
    #[arg(long, short = 'n')]
    requests: Option<u64>,
    /// Open loop: requests per second over all connections, at fixed intervals
    /// (latency counted from the scheduled time). Without it: closed loop.
    #[arg(long, short = 'R')]
    rate: Option<f64>,
    /// Longest wait for one answer, connecting included.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// A new connection for every request (`Connection: close`).
    #[arg(long)]
    no_keepalive: bool,
    /// Speak TLS (https:// URL); needs --ca or --insecure.
    #[arg(long)]
    tls: bool,
    /// PEM file of the certificate authority to trust.
    #[arg(long)]
    ca: Option<String>,
    /// Accept any server certificate.
    #[arg(long)]
    insecure: bool,
    /// TLS server name (default: the URL's host).
    #[arg(long)]
    server_name: Option<String>,
    /// Request method.
    #[arg(long, short = 'm', default_value = "GET")]
    method: String,
    /// A request header, 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_parser = request::parse_header)]
    headers: Vec<(String, String)>,
    /// Request body.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// Request body from a file.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// Write the result as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an HTML report with latency and rate plots to this file.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Name of this run in the reports.
    #[arg(long, default_value = "run")]
    label: String,
    /// No progress line.
    #[arg(long, short = 'q')]
    quiet: bool,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Upstream(args)) => upstream::main(args),
        Some(Command::Idle(args)) => idle::main(args),
        Some(Command::Scenario(args)) => scenario::main(args),
        None => load_main(cli.load),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis-load: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_main(args: LoadArgs) -> anyhow::Result<()> {
    let url = args.url.clone().context("a target URL is required")?;
    let spec = spec_from(&args, &url)?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())
        .context("installing the Ctrl-C handler")?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())
        .context("installing the SIGTERM handler")?;
    let finished = engine::run(spec.clone(), stop)?;
    let result = RunResult::new(&spec, &url, &args.label, &finished);
    print!("{}", table::summary(&result));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&result).context("encoding the result")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        let page = html::Page {
            title: &format!("Load test: {url}"),
            notes: vec![format!(
                "{} loop, {} connections, {} threads, {}; {:.1}s.",
                result.mode,
                result.connections,
                result.threads,
                if result.keepalive {
                    "keep-alive"
                } else {
                    "no keep-alive"
                },
                result.elapsed_s
            )],
            table: summary_rows(&result),
            series: vec![html::Series {
                label: &result.label,
                percentiles: &result.percentiles,
                per_second: &result.per_second,
                elapsed_s: result.elapsed_s,
            }],
        };
        std::fs::write(path, html::render(&page))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn summary_rows(result: &RunResult) -> (Vec<String>, Vec<Vec<String>>) {
    let l = &result.latency_ms;
    let header = [
        "run", "req/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "errors",
    ];
    let row = vec![
        result.label.clone(),
        format!("{:.0}", result.achieved_rate),
        format!("{:.3}", l.p50),
        format!("{:.3}", l.p90),
        format!("{:.3}", l.p99),
        format!("{:.3}", l.p999),
        format!("{:.3}", l.max),
        result.errors_total.to_string(),
    ];
    (header.map(String::from).to_vec(), vec![row])
}

fn spec_from(args: &LoadArgs, url: &str) -> anyhow::Result<LoadSpec> {
    let target = Target::parse(url)?;
    let body = match (&args.body, &args.body_file) {
        (Some(body), _) => body.clone().into_bytes(),
        (None, Some(path)) => {
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => Vec::new(),
    };
    let tls = (args.tls || target.tls).then(|| TlsSpec {
        ca_file: args.ca.clone(),
        insecure: args.insecure,
        server_name: args
            .server_name
            .clone()
            .unwrap_or_else(|| target.host.clone()),
    });
    let spec = LoadSpec {
        mode: match args.rate {
            Some(rate) => Mode::Open { rate },
            None => Mode::Closed,
        },
        connections: args.connections,
        threads: args.threads,
        duration: args.duration,
        max_requests: args.requests,
        timeout: args.timeout,
        keepalive: !args.no_keepalive,
        method: args.method.clone(),
        headers: args.headers.clone(),
        body,
        tls,
        progress: !args.quiet,
        target,
    };
    spec.validate()?;
    Ok(spec)
}
