//! The Portcullis peers: `[gateway]` and each of `[[gateways]]`, every one
//! with its own config, directory (so its `state` stays its own), listener and
//! admin port. Node 1 of a peer is measured (pinned to the proxy cores, one
//! worker per core); its other nodes (`nodes = N`) run from the same config
//! with their own ports and `${NODE}`, one worker each on the upstream's cores,
//! and take no load (the other members of a cluster).

use super::cpus::CpuList;
use super::file::{GatewaySection, Scenario};
use super::peers::{Ctx, Peer};
use super::procs::{self, Proc};
use anyhow::Context;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// One node's place: its directory, listener and admin ports.
struct Node {
    number: usize,
    dir: PathBuf,
    port: u16,
    admin: u16,
}

/// Writes the node's config into its directory; returns its path.
fn write_config(
    scenario: &Scenario,
    section: &GatewaySection,
    ctx: &Ctx,
    node: &Node,
) -> anyhow::Result<PathBuf> {
    let generate = &scenario.file.generate;
    let mut routes = String::new();
    for i in 0..generate.routes {
        let _ = write!(
            routes,
            "[[deployments.routes]]\npath = \"/r{i}\"\nmethods = [\"GET\"]\nbackend = {{ type = \"http\", url = \"http://127.0.0.1:{}/hello\" }}\n\n",
            ctx.upstream_port()
        );
    }
    let mut subscribers = String::new();
    for i in 0..generate.subscribers {
        let _ = write!(
            subscribers,
            "[[subscribers]]\nname = \"sub{i}\"\nusage_plans = [\"gold\"]\nclients = [{{ name = \"sub{i}-client\", token = \"client-token-{i:010}\" }}]\n\n"
        );
    }
    let admin = format!("127.0.0.1:{}", node.admin);
    let number = node.number.to_string();
    let text = ctx.fill(
        &scenario.gateway_template(section)?,
        &format!("127.0.0.1:{}", node.port),
        &[
            ("ADMIN", &admin),
            ("NODE", &number),
            ("ROUTES", &routes),
            ("SUBSCRIBERS", &subscribers),
        ],
    )?;
    std::fs::create_dir_all(&node.dir)
        .with_context(|| format!("creating {}", node.dir.display()))?;
    let path = node.dir.join("gateway.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `portcullis check`: `Err` with the gateway's own message when it refuses the config.
pub fn accepts(bin: &Path, config: &Path) -> anyhow::Result<Result<(), String>> {
    let output = std::process::Command::new(bin)
        .arg("check")
        .arg("--config")
        .arg(config)
        .output()
        .with_context(|| format!("running {} check", bin.display()))?;
    if output.status.success() {
        return Ok(Ok(()));
    }
    let message = String::from_utf8_lossy(&output.stderr);
    let first = message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("refused")
        .trim();
    // The config's path is the run directory's: say where in the file, not which file.
    let first = first.split_once(".toml: ").map_or(first, |(_, rest)| rest);
    Ok(Err(first.to_string()))
}

/// `portcullis run` of one node: `workers` workers pinned to `cpus`.
fn spawn(
    bin: &Path,
    name: &str,
    config: &Path,
    cpus: &CpuList,
    workers: usize,
) -> anyhow::Result<Proc> {
    let args = vec![
        "run".to_string(),
        "--config".to_string(),
        config.display().to_string(),
        "--workers".to_string(),
        workers.to_string(),
        "--no-watch".to_string(),
    ];
    let log = config.with_file_name("gateway.log");
    procs::spawn(
        name,
        cpus,
        &bin.display().to_string(),
        &args,
        &log,
        &[("PORTCULLIS_LOG", "warn")],
    )
}

/// Checks and starts the peer `name`: `Ok(Err(message))` when the gateway
/// refuses its config (nothing started). Its other nodes are ready on return;
/// node 1 is waited for with the other peers.
pub fn start(
    scenario: &Scenario,
    name: &str,
    section: &GatewaySection,
    bin: &Path,
    ctx: &Ctx,
    proxy_cpus: &CpuList,
    helper_cpus: &CpuList,
) -> anyhow::Result<Result<Peer, String>> {
    let node = |number: usize| -> anyhow::Result<Node> {
        Ok(Node {
            number,
            dir: ctx.run_dir.join(name).join(format!("node{number}")),
            port: procs::free_port()?,
            admin: procs::free_port()?,
        })
    };
    let first = node(1)?;
    let config = write_config(scenario, section, ctx, &first)?;
    if let Err(message) = accepts(bin, &config)? {
        return Ok(Err(message));
    }
    let mut helpers = Vec::new();
    for number in 2..=section.nodes {
        let other = node(number)?;
        let config = write_config(scenario, section, ctx, &other)?;
        let mut proc = spawn(
            bin,
            &format!("{name} node {number}"),
            &config,
            helper_cpus,
            1,
        )?;
        let addr = ([127, 0, 0, 1], other.port).into();
        procs::wait_ready(&mut proc, addr, "/", scenario.file.tls)?;
        eprintln!(
            "{name} node {number} ready on 127.0.0.1:{} (pid {}, takes no load)",
            other.port,
            proc.pid()
        );
        helpers.push(proc);
    }
    let proc = spawn(bin, name, &config, proxy_cpus, proxy_cpus.count())?;
    let pid = proc.pid();
    Ok(Ok(Peer {
        name: name.to_string(),
        port: first.port,
        proc,
        pid,
        admin_port: Some(first.admin),
        helpers,
    }))
}
