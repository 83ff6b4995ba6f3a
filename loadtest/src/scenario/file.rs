//! A scenario file (`loadtest/scenarios/NAME.toml`) as written: the upstream,
//! the gateway config (inline or a path), more gateway peers with configs of
//! their own (`[[gateways]]`, for same-run A/B of two configs), services the
//! runner starts first (`[[services]]`, e.g. Redis), generated bulk (routes,
//! subscribers), the load, what is read around each run (`[measure]`), and what
//! nginx and HAProxy add to do the same job.
//!
//! Placeholders in the gateway config and the peers' extra text, replaced
//! when the run directory is known: `${LISTEN}` (the proxy's address),
//! `${UPSTREAM}` (and `${UPSTREAM_2}` … when the upstream listens on several
//! ports), `${ADMIN}`, `${RUN_DIR}`, `${CERT_PEM}`, `${KEY_PEM}`,
//! `${CERT_FILE}`, `${KEY_FILE}`, for each service `${NAME}` (its
//! `127.0.0.1:PORT`) and `${NAME_PORT}` (name upper-cased, `-` as `_`), in a
//! gateway config `${NODE}` (the node's number, 1 for the measured one), and
//! `${ROUTES}` and `${SUBSCRIBERS}` (the generated TOML).

use crate::spec::parse_duration;
use anyhow::Context;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub description: String,
    /// Gateway features beyond the core that the config uses; named when the
    /// gateway refuses it ("skipped: gateway lacks feature X").
    #[serde(default)]
    pub requires: Vec<String>,
    /// The peer the ratio columns compare with (default: nginx).
    #[serde(default)]
    pub baseline: Option<String>,
    #[serde(default)]
    pub upstream: UpstreamSection,
    pub gateway: GatewaySection,
    /// More gateway peers, each with its own config, in the same rounds.
    #[serde(default)]
    pub gateways: Vec<GatewaySection>,
    /// Processes started before the proxies and stopped after them.
    #[serde(default)]
    pub services: Vec<ServiceSection>,
    #[serde(default)]
    pub measure: MeasureSection,
    #[serde(default)]
    pub generate: Generate,
    pub load: LoadSection,
    #[serde(default)]
    pub nginx: PeerSection,
    #[serde(default)]
    pub haproxy: PeerSection,
    #[serde(default)]
    pub tls: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// Delay before each upstream answer, e.g. "2ms".
    pub delay: Option<String>,
    /// Ports the upstream listens on (`${UPSTREAM}`, `${UPSTREAM_2}`, …): one
    /// process serving them all, so a back end of several servers costs the
    /// upstream no more than one.
    #[serde(default = "default_one")]
    pub ports: usize,
}

impl Default for UpstreamSection {
    fn default() -> Self {
        UpstreamSection {
            delay: None,
            ports: 1,
        }
    }
}

/// A Portcullis peer: `[gateway]`, or one of `[[gateways]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// The peer's name in the reports (`[gateway]`: "portcullis" by default).
    pub name: Option<String>,
    /// The config, inline.
    pub config: Option<String>,
    /// Or a config file, relative to the scenario file. In `[[gateways]]`,
    /// neither means `[gateway]`'s config.
    pub config_file: Option<String>,
    /// TOML appended to the config (it must start with a `[table]`).
    #[serde(default)]
    pub append: String,
    /// Nodes started from the config, each with its own listener, admin port
    /// and `${NODE}`; the load goes to node 1, the others stay idle (e.g. the
    /// other members of a cluster).
    #[serde(default = "default_one")]
    pub nodes: usize,
}

/// A process the runner starts before the proxies (on the upstream's cores)
/// and stops by its PID after them; ready when its port accepts connections.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSection {
    /// Letters, digits, `-` and `_`; names the placeholders.
    pub name: String,
    /// The program, looked up in PATH.
    pub program: String,
    /// Its arguments; `${PORT}` is its own port, `${RUN_DIR}` its run directory.
    #[serde(default)]
    pub args: Vec<String>,
}

/// What is read around each measured run, besides the load's figures.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureSection {
    /// Counters read from each gateway peer's admin `/metrics` before and
    /// after the run; the table shows 2xx answers per increment.
    #[serde(default)]
    pub gateway_counters: Vec<CounterSpec>,
    /// A service that speaks Redis: `INFO commandstats` read before and after
    /// the run; the table shows commands per 2xx answer and 2xx answers per
    /// script call.
    pub redis: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterSpec {
    /// The series name as `/metrics` prints it, without labels.
    pub metric: String,
    /// The column's heading.
    pub label: String,
}

fn default_one() -> usize {
    1
}

/// Bulk generated into every peer's config.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// Exact routes `<path_prefix>/r0` … `/r{n-1}` to the upstream.
    #[serde(default)]
    pub routes: usize,
    /// Subscribers `sub0` … each with one client token `client-token-<i, 10 digits>` on plan `gold`.
    #[serde(default)]
    pub subscribers: usize,
    /// Path prefix of the generated routes.
    #[serde(default = "default_prefix")]
    pub path_prefix: String,
}

fn default_prefix() -> String {
    "/bench".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSection {
    pub path: String,
    #[serde(default = "default_connections")]
    pub connections: usize,
    #[serde(default = "default_duration")]
    pub duration: String,
    #[serde(default = "default_warmup")]
    pub warmup: String,
    /// Open loop at this many requests per second; absent: closed loop.
    pub rate: Option<f64>,
    #[serde(default = "default_true")]
    pub keepalive: bool,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default = "default_rounds")]
    pub rounds: usize,
    /// Idle keep-alive connections held open during the load (memory is measured).
    #[serde(default)]
    pub idle_connections: usize,
    /// Also measure each peer with wrk (closed loop only): the cross-check.
    #[serde(default)]
    pub wrk: bool,
}

fn default_connections() -> usize {
    64
}
fn default_duration() -> String {
    "5s".to_string()
}
fn default_warmup() -> String {
    "1s".to_string()
}
fn default_true() -> bool {
    true
}
fn default_method() -> String {
    "GET".to_string()
}
fn default_rounds() -> usize {
    3
}

/// What a peer adds to its generated config to do the scenario's job.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerSection {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// nginx: directives in `http {}`; HAProxy: lines in `global`.
    #[serde(default)]
    pub global: String,
    /// nginx: directives in the proxied `location`; HAProxy: lines in the frontend.
    #[serde(default)]
    pub front: String,
    /// Why the peer is configured as it is (printed in the report).
    #[serde(default)]
    pub note: String,
}

impl Default for PeerSection {
    fn default() -> Self {
        PeerSection {
            enabled: true,
            global: String::new(),
            front: String::new(),
            note: String::new(),
        }
    }
}

/// A loaded scenario.
pub struct Scenario {
    pub name: String,
    pub path: PathBuf,
    pub file: ScenarioFile,
    pub duration: Duration,
    pub warmup: Duration,
}

impl Scenario {
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: ScenarioFile =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("scenario file name")?
            .to_string();
        let duration = parse_duration(&file.load.duration).map_err(anyhow::Error::msg)?;
        let warmup = parse_duration(&file.load.warmup).map_err(anyhow::Error::msg)?;
        validate(&file).with_context(|| path.display().to_string())?;
        Ok(Scenario {
            name,
            path: path.to_path_buf(),
            file,
            duration,
            warmup,
        })
    }

    /// Every Portcullis peer: `[gateway]` first, then `[[gateways]]`, with its name.
    pub fn gateway_peers(&self) -> Vec<(String, &GatewaySection)> {
        let first = self.file.gateway.name.clone();
        std::iter::once((
            first.unwrap_or_else(|| "portcullis".into()),
            &self.file.gateway,
        ))
        .chain(
            self.file
                .gateways
                .iter()
                .map(|g| (g.name.clone().unwrap_or_default(), g)),
        )
        .collect()
    }

    /// A gateway peer's config template: its own (inline, or read from its
    /// file) or `[gateway]`'s, then what it appends.
    pub fn gateway_template(&self, section: &GatewaySection) -> anyhow::Result<String> {
        let own = |section: &GatewaySection| -> anyhow::Result<Option<String>> {
            if let Some(config) = &section.config {
                return Ok(Some(config.clone()));
            }
            let Some(relative) = section.config_file.as_deref() else {
                return Ok(None);
            };
            let path = self.path.parent().unwrap_or(Path::new(".")).join(relative);
            std::fs::read_to_string(&path)
                .map(Some)
                .with_context(|| format!("reading {}", path.display()))
        };
        let base = match own(section)? {
            Some(text) => text,
            None => own(&self.file.gateway)?.unwrap_or_default(),
        };
        if section.append.is_empty() {
            return Ok(base);
        }
        Ok(format!(
            "{}\n\n{}\n",
            base.trim_end(),
            section.append.trim()
        ))
    }
}

/// What serde cannot check: one config per peer, unique names, known services.
fn validate(file: &ScenarioFile) -> anyhow::Result<()> {
    if file.gateway.config.is_some() == file.gateway.config_file.is_some() {
        anyhow::bail!("[gateway] needs exactly one of config and config_file");
    }
    let mut names = vec![file.gateway.name.as_deref().unwrap_or("portcullis")];
    for extra in &file.gateways {
        let name = extra.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            anyhow::bail!("every [[gateways]] entry needs a name");
        }
        if extra.config.is_some() && extra.config_file.is_some() {
            anyhow::bail!("[[gateways]] {name}: config and config_file are exclusive");
        }
        names.push(name);
    }
    for section in std::iter::once(&file.gateway).chain(&file.gateways) {
        if section.nodes == 0 {
            anyhow::bail!("a gateway's nodes must be at least 1");
        }
    }
    let valid = |n: &str| {
        !n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if let Some(bad) = names.iter().find(|n| !valid(n)) {
        anyhow::bail!("peer name {bad:?}: letters, digits, - and _ only");
    }
    names.extend(["nginx", "haproxy"]);
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            anyhow::bail!("two peers are named {name:?}");
        }
    }
    if let Some(baseline) = &file.baseline {
        if !names.contains(&baseline.as_str()) {
            anyhow::bail!("baseline {baseline:?} names no peer");
        }
    }
    if file.upstream.ports == 0 {
        anyhow::bail!("[upstream] ports must be at least 1");
    }
    for (i, service) in file.services.iter().enumerate() {
        if !valid(&service.name) {
            anyhow::bail!(
                "service name {:?}: letters, digits, - and _ only",
                service.name
            );
        }
        if file.services[..i].iter().any(|s| s.name == service.name) {
            anyhow::bail!("two services are named {:?}", service.name);
        }
    }
    if let Some(redis) = &file.measure.redis {
        if !file.services.iter().any(|s| &s.name == redis) {
            anyhow::bail!("[measure] redis = {redis:?} names no service");
        }
    }
    Ok(())
}

/// The placeholder a service's address goes by: `redis-a` → `REDIS_A`.
pub fn placeholder_name(service: &str) -> String {
    service.to_ascii_uppercase().replace('-', "_")
}

/// Replaces every `${NAME}` of `values` in `text`.
pub fn substitute(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    out
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
