//! The `portcullis` command line: `run` serves a config, `check` validates one
//! and prints what it defines, `import oci` writes one from OCI API Gateway
//! exports ([`crate::import`]). The binary's `main` only calls [`main`].

use crate::runtime::reload::compile_file;
use crate::runtime::server::{self, ServerOptions};
use crate::service::preflight::DriverChoice;
use crate::snapshot::{BackendSpec, ChangeSummary, Snapshot};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// The config file used when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "config/gateway.toml";

/// Portcullis: a thread-per-core io_uring API gateway.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the configured listeners until SIGTERM/SIGINT (SIGHUP reloads the config).
    Run {
        /// Config file to serve.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Worker threads, one per core (default: every available core).
        #[arg(long, short, value_parser = clap::value_parser!(u16).range(1..=1024))]
        workers: Option<u16>,
        /// Event driver: io_uring with epoll fallback (auto), io_uring only, or epoll only.
        #[arg(long, value_enum, default_value_t = DriverArg::Auto)]
        driver: DriverArg,
        /// Do not watch the config file (SIGHUP still reloads it).
        #[arg(long)]
        no_watch: bool,
        /// Seconds between audit-log summaries of refused connections and requests.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        audit_period: u64,
        /// Unix socket on which a successor can take this gateway's listening
        /// sockets over (e.g. /run/portcullis/control.sock).
        #[arg(long)]
        control_socket: Option<PathBuf>,
        /// Take over from the gateway listening on --control-socket: receive its
        /// listening sockets, serve, then let it drain and exit.
        #[arg(long, requires = "control_socket")]
        takeover: bool,
        /// Connections to size the file-descriptor limit for (two descriptors
        /// each); when given, the gateway refuses to start if the limit cannot
        /// be raised that far (default 4096, a warning only).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
        connections: Option<u64>,
    },
    /// Parse and validate a config file and print its listeners, deployments and routes.
    Check {
        /// Config file to check.
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Admin endpoint of a running gateway (e.g. 127.0.0.1:9901): also print
        /// what the file would change against the generation it serves.
        #[arg(long)]
        admin: Option<String>,
    },
    /// Generate a random client token and print it with its SHA-256 (for `token_sha256`).
    Token,
    /// Write a Portcullis config from another gateway's exported configuration.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
}

/// The gateways `import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// OCI API Gateway: deployments, usage plans and subscribers as the OCI CLI
    /// prints them (`oci api-gateway deployment get`, `usage-plan get|list`,
    /// `subscriber get|list`); the report of what was not carried over goes to stderr.
    Oci {
        /// A deployment (`deployment get`) or a bare deployment specification (repeatable).
        #[arg(long = "deployment", value_name = "FILE")]
        deployments: Vec<PathBuf>,
        /// Usage plans (`usage-plan get` or `usage-plan list --all`).
        #[arg(long, value_name = "FILE")]
        usage_plans: Vec<PathBuf>,
        /// Subscribers (`subscriber get` or `subscriber list --all`).
        #[arg(long, value_name = "FILE")]
        subscribers: Vec<PathBuf>,
        /// The listener every deployment is put on.
        #[arg(long, value_name = "NAME=ADDR", default_value = crate::import::oci::DEFAULT_LISTENER,
              value_parser = crate::import::oci::parse_listener)]
        listener: (String, String),
        /// Write the config here instead of to stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Exit with status 2 when anything was not carried over as it was.
        #[arg(long)]
        strict: bool,
        /// Write client tokens as given instead of as SHA-256 digests.
        #[arg(long)]
        plain_tokens: bool,
    },
}

/// The `--driver` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriverArg {
    Auto,
    IoUring,
    Epoll,
}

impl From<DriverArg> for DriverChoice {
    fn from(arg: DriverArg) -> Self {
        match arg {
            DriverArg::Auto => DriverChoice::Auto,
            DriverArg::IoUring => DriverChoice::IoUring,
            DriverArg::Epoll => DriverChoice::Epoll,
        }
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            config,
            workers,
            driver,
            no_watch,
            audit_period,
            control_socket,
            takeover,
            connections,
        } => {
            init_logging();
            let options = ServerOptions {
                config_path: config,
                workers: workers.map(usize::from),
                driver: driver.into(),
                watch: !no_watch,
                audit_period: std::time::Duration::from_secs(audit_period),
                control_socket,
                takeover,
                connections,
            };
            match server::run(&options) {
                Ok(()) => ExitCode::SUCCESS,
                // One line, not a log record as well: stderr is the log.
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config, admin } => match compile_file(&config) {
            Ok(snapshot) => {
                print!("{}", summary(&config, &snapshot));
                match admin.map(|address| against_running(&address, &snapshot)) {
                    Some(Err(e)) => {
                        eprintln!("error: {e}");
                        ExitCode::FAILURE
                    }
                    Some(Ok(report)) => {
                        print!("{report}");
                        ExitCode::SUCCESS
                    }
                    None => ExitCode::SUCCESS,
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Import {
            source:
                ImportSource::Oci {
                    deployments,
                    usage_plans,
                    subscribers,
                    listener,
                    out,
                    strict,
                    plain_tokens,
                },
        } => crate::import::oci::run(
            &crate::import::oci::Options {
                deployments,
                usage_plans,
                subscribers,
                listener,
                plain_tokens,
            },
            out.as_deref(),
            strict,
        ),
        Command::Token => match crate::policy::usage::token::generate() {
            Ok(token) => {
                println!("token        = \"{token}\"");
                println!(
                    "token_sha256 = \"{}\"",
                    crate::policy::usage::token::sha256_hex(&token)
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot read random bytes: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("PORTCULLIS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// What `snapshot` would change against the generation a running gateway serves.
fn against_running(address: &str, snapshot: &Snapshot) -> Result<String, String> {
    let running = crate::admin::fetch_config(address)?;
    let changes = ChangeSummary::between_inventories(&running.inventory, snapshot.inventory());
    Ok(format!(
        "against running generation {} (loaded {}, sha256 {}): {changes}\n",
        running.generation, running.loaded_at, running.digest
    ))
}

/// The one-screen summary `check` prints.
pub fn summary(path: &std::path::Path, snapshot: &Snapshot) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "{}: OK", path.display());
    let _ = writeln!(s, "listeners ({}):", snapshot.listeners.len());
    for l in &snapshot.listeners {
        match &l.tls {
            None => {
                let _ = writeln!(s, "  {:<16} {}", l.name, l.address);
            }
            Some(tls) => {
                let certificates = tls.resolver.current().keys().len();
                let _ = writeln!(
                    s,
                    "  {:<16} {} (TLS, {certificates} certificate(s))",
                    l.name, l.address
                );
            }
        }
    }
    let _ = writeln!(s, "deployments ({}):", snapshot.deployments.len());
    for (d, deployment) in snapshot.deployments.iter().enumerate() {
        let listener = &snapshot.listeners[deployment.listener].name;
        let prefix = if deployment.path_prefix.is_empty() {
            "/"
        } else {
            &deployment.path_prefix
        };
        let _ = writeln!(s, "  {} on {} at {}", deployment.name, listener, prefix);
        for route in snapshot.routes.iter().filter(|r| r.deployment == d) {
            let methods = if route.methods.is_empty() {
                "*".to_string()
            } else {
                route.methods.join(",")
            };
            let target = backend_label(&route.backend);
            let _ = writeln!(s, "    {methods:<12} {:<40} -> {target}", route.pattern);
            if let BackendSpec::Dynamic(dynamic) = &route.backend {
                for (name, backend) in dynamic.names.iter().zip(&dynamic.backends) {
                    let _ = writeln!(s, "    {:<12} {name:>40} -> {}", "", backend_label(backend));
                }
            }
        }
    }
    if !snapshot.usage.plans.is_empty() || !snapshot.usage.subscribers.is_empty() {
        let clients: usize = snapshot
            .usage
            .subscribers
            .iter()
            .map(|s| s.clients.len())
            .sum();
        let _ = writeln!(
            s,
            "usage plans ({}): {}",
            snapshot.usage.plans.len(),
            snapshot
                .usage
                .plans
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(
            s,
            "subscribers: {} with {clients} clients",
            snapshot.usage.subscribers.len()
        );
    }
    if let Some(cluster) = &snapshot.cluster {
        let _ = writeln!(s, "cluster: {}", cluster.summary());
    }
    if let Some(resolver) = &snapshot.resolver {
        let _ = writeln!(s, "resolver: {}", resolver.summary());
    }
    if snapshot.files.len() > 1 {
        let _ = writeln!(s, "files ({}):", snapshot.files.len());
        for file in &snapshot.files {
            let _ = writeln!(s, "  {}", file.display());
        }
    }
    let mut paths: Vec<(&str, &std::path::Path)> = snapshot
        .paths
        .iter()
        .map(|p| (p.key.as_str(), p.path.as_path()))
        .collect();
    if snapshot.has_quotas() && !paths.iter().any(|(key, _)| *key == "state_dir") {
        paths.push(("state_dir (default)", snapshot.state_dir.as_path()));
    }
    if !paths.is_empty() {
        let _ = writeln!(
            s,
            "paths (relative ones follow the config file's directory):"
        );
        for (key, path) in paths {
            let _ = writeln!(s, "  {key} = {}", path.display());
        }
    }
    for warning in &snapshot.warnings {
        let _ = writeln!(s, "warning: {warning}");
    }
    s
}

/// Where a back end sends requests, for the summary.
fn backend_label(backend: &BackendSpec) -> String {
    match backend {
        BackendSpec::Http(h) => h.label(),
        BackendSpec::Stock(stock) => format!("stock {}", stock.status),
        BackendSpec::Dynamic(dynamic) => format!("dynamic on {}", dynamic.selector_text),
    }
}
