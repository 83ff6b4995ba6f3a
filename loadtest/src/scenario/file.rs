//! A scenario file (`loadtest/scenarios/NAME.toml`) as written: the upstream,
//! the gateway config (inline or a path), generated bulk (routes,
//! subscribers), the load, and what nginx and HAProxy add to do the same job.
//!
//! Placeholders in the gateway config and the peers' extra text, replaced
//! when the run directory is known: `${LISTEN}` (the proxy's address),
//! `${UPSTREAM}`, `${ADMIN}`, `${RUN_DIR}`, `${CERT_PEM}`, `${KEY_PEM}`,
//! `${CERT_FILE}`, `${KEY_FILE}`, and in the gateway config `${ROUTES}` and
//! `${SUBSCRIBERS}` (the generated TOML).

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
    #[serde(default)]
    pub upstream: UpstreamSection,
    pub gateway: GatewaySection,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// Delay before each upstream answer, e.g. "2ms".
    pub delay: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// The config, inline.
    pub config: Option<String>,
    /// Or a config file, relative to the scenario file.
    pub config_file: Option<String>,
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
        if file.gateway.config.is_some() == file.gateway.config_file.is_some() {
            anyhow::bail!(
                "{}: [gateway] needs exactly one of config and config_file",
                path.display()
            );
        }
        Ok(Scenario {
            name,
            path: path.to_path_buf(),
            file,
            duration,
            warmup,
        })
    }

    /// The gateway config template (inline, or read from its file).
    pub fn gateway_template(&self) -> anyhow::Result<String> {
        if let Some(config) = &self.file.gateway.config {
            return Ok(config.clone());
        }
        let relative = self.file.gateway.config_file.as_deref().unwrap_or_default();
        let path = self.path.parent().unwrap_or(Path::new(".")).join(relative);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }
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
mod tests {
    use super::*;

    // Every occurrence of a placeholder is replaced; unknown ones stay.
    #[test]
    fn placeholders() {
        assert_eq!(
            substitute("${A}-${A}-${B}", &[("A", "x")]),
            "x-x-${B}".to_string()
        );
    }

    // Every shipped scenario file parses.
    #[test]
    fn shipped_scenarios_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut count = 0;
        for entry in std::fs::read_dir(dir).expect("scenarios directory") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                count += 1;
            }
        }
        assert!(count >= 9, "{count} scenario files");
    }
}
