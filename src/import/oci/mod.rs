//! `portcullis import oci`: OCI API Gateway exports (deployments, usage plans,
//! subscribers, as the OCI CLI and API give them) into one Portcullis config.
//!
//! The way through: each file is read and parsed ([`json`], envelopes
//! unwrapped), deployments are translated first ([`deployment`], with
//! [`request_policies`], [`route_policies`], [`backend`], [`jwt`], [`cors`],
//! [`headers`]) so that usage plans ([`usage_plans`]) can map their targets'
//! OCIDs to names, then subscribers ([`subscribers`]) map their plans' OCIDs.
//! The result ([`model`]) is written as TOML ([`writer`]), read back with
//! the config parser and compiled as `portcullis check` would (a refusal is a
//! finding) before it is handed out. Whatever could not be carried
//! over is a [`Finding`] ([`report`]): on stderr, and as a comment in place.
//!
//! It never touches a running gateway and never reaches the network.

mod backend;
mod cors;
mod deployment;
mod headers;
mod json;
mod jwt;
mod model;
mod names;
mod report;
mod request_policies;
mod route_policies;
mod subscribers;
mod usage_plans;
mod writer;

pub use json::ImportError;
pub use report::{Finding, Loc, Report};

use model::Output;
use names::Names;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The listener every imported deployment is put on, unless told otherwise.
pub const DEFAULT_LISTENER: &str = "public=0.0.0.0:8080";

/// What to import.
#[derive(Debug, Clone)]
pub struct Options {
    /// `deployment get` exports or bare deployment specifications.
    pub deployments: Vec<PathBuf>,
    /// `usage-plan get` / `list` exports.
    pub usage_plans: Vec<PathBuf>,
    /// `subscriber get` / `list` exports.
    pub subscribers: Vec<PathBuf>,
    /// The listener's name and `IP:PORT`.
    pub listener: (String, String),
    /// Write client tokens as given instead of as SHA-256 digests.
    pub plain_tokens: bool,
}

/// An import's result: the config text and what was not carried over.
#[derive(Debug, Clone)]
pub struct Imported {
    pub toml: String,
    pub report: Report,
}

/// `NAME=IP:PORT` for `--listener`.
pub fn parse_listener(text: &str) -> Result<(String, String), String> {
    let (name, address) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=IP:PORT"))?;
    if name.trim().is_empty() {
        return Err(format!("`{text}`: the listener needs a name"));
    }
    address
        .parse::<std::net::SocketAddr>()
        .map_err(|_| format!("`{address}` is not an IP:PORT address"))?;
    Ok((name.trim().to_string(), address.to_string()))
}

/// Reads and translates every input file.
pub fn import(options: &Options) -> Result<Imported, ImportError> {
    if options.deployments.is_empty()
        && options.usage_plans.is_empty()
        && options.subscribers.is_empty()
    {
        return Err(ImportError::plain(
            "nothing to import: give --deployment, --usage-plans or --subscribers files",
        ));
    }
    let mut output = Output::default();
    let (listener, address) = &options.listener;
    output.listener.set("name", listener.as_str());
    output.listener.set("address", address.as_str());
    let mut names = Names::default();
    for path in &options.deployments {
        let (file, value) = read(path)?;
        let fallback = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "deployment".to_string());
        for (loc, item) in json::objects(&value, &Loc::root(&file), &mut output.findings)? {
            let id_loc = loc.key("id");
            let out = deployment::deployment(loc, item, listener, &fallback, &mut names)?;
            if out.id.is_some() && output.deployments.iter().any(|d| d.id == out.id) {
                return Err(ImportError::at(&id_loc, "this deployment is given twice"));
            }
            output.deployments.push(out);
        }
    }
    let deployment_ids: Vec<(String, String)> = output
        .deployments
        .iter()
        .filter_map(|d| d.id.clone().map(|id| (id, d.name.clone())))
        .collect();
    let mut names = Names::default();
    for path in &options.usage_plans {
        let (file, value) = read(path)?;
        for (loc, item) in json::objects(&value, &Loc::root(&file), &mut output.findings)? {
            let id_loc = loc.key("id");
            let out = usage_plans::plan(loc, item, &deployment_ids, &mut names)?;
            if out.id.is_some() && output.plans.iter().any(|p| p.id == out.id) {
                return Err(ImportError::at(&id_loc, "this usage plan is given twice"));
            }
            output.plans.push(out);
        }
    }
    let plan_ids: Vec<(String, String)> = output
        .plans
        .iter()
        .filter_map(|p| p.id.clone().map(|id| (id, p.name.clone())))
        .collect();
    let mut names = Names::default();
    let mut tokens = subscribers::Tokens::new(options.plain_tokens);
    for path in &options.subscribers {
        let (file, value) = read(path)?;
        for (loc, item) in json::objects(&value, &Loc::root(&file), &mut output.findings)? {
            let out = subscribers::subscriber(loc, item, &plan_ids, &mut names, &mut tokens)?;
            output.subscribers.push(out);
        }
    }
    if let Some(refusal) = check(&writer::write(&output))? {
        output.findings.push(refusal);
    }
    let report = Report {
        findings: output.findings(),
    };
    output.header = header(options, &report);
    let toml = writer::write(&output);
    Ok(Imported { toml, report })
}

/// Reads `toml` back with the config parser (a failure is an importer bug)
/// and compiles it as `portcullis check` would; a refusal there (routes of
/// two deployments that collide on the one listener, say) is a finding.
/// Configs with a remote JWKS are not compiled: that would start fetching it.
fn check(toml: &str) -> Result<Option<Finding>, ImportError> {
    let file = Path::new("imported.toml");
    let config = crate::config::parse_str(toml, file).map_err(|e| {
        ImportError::plain(format!(
            "the imported config does not read back (an importer bug; please report it): {e}"
        ))
    })?;
    let remote = config.deployments.iter().any(|d| {
        d.authentication
            .as_ref()
            .is_some_and(|a| a.public_keys.kind == crate::config::PublicKeysKind::RemoteJwks)
    });
    if remote {
        return Ok(None);
    }
    Ok(crate::snapshot::Snapshot::compile(&config, toml, file)
        .err()
        .map(|e| {
            let at = e.key.map(|k| format!("`{k}`: ")).unwrap_or_default();
            Finding::new(
                Loc::root("imported config"),
                format!("`portcullis check` refuses the result: {at}{}", e.message),
            )
        }))
}

/// Reads and parses one input file; returns its name as messages show it.
fn read(path: &Path) -> Result<(String, serde_json::Value), ImportError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ImportError::plain(format!("{file}: cannot read: {e}")))?;
    let value = json::parse(&file, &text)?;
    Ok((file, value))
}

fn header(options: &Options, report: &Report) -> Vec<String> {
    let list = |paths: &[PathBuf]| {
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = vec!["Imported from OCI API Gateway by `portcullis import oci`.".to_string()];
    for (what, paths) in [
        ("deployments", &options.deployments),
        ("usage plans", &options.usage_plans),
        ("subscribers", &options.subscribers),
    ] {
        if !paths.is_empty() {
            lines.push(format!("{what}: {}", list(paths)));
        }
    }
    lines.push(
        "OCI resource metadata (compartments, gateways, times, tags, locks) has no effect on requests and is not carried."
            .to_string(),
    );
    lines.push(if report.is_empty() {
        "Everything else was carried over.".to_string()
    } else {
        format!(
            "{} item(s) were not carried over as they were: see the `not carried over` comments below.",
            report.findings.len()
        )
    });
    lines.push("Check it with `portcullis check --config FILE` before serving it.".to_string());
    lines
}

/// The command: import, write the config to `out` (or stdout), print the
/// report on stderr. Exit status 1 on an error, 2 when `strict` and anything
/// was not carried over.
pub fn run(options: &Options, out: Option<&Path>, strict: bool) -> ExitCode {
    let imported = match import(options) {
        Ok(imported) => imported,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &imported.toml) {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!("wrote {}", path.display());
        }
        None => print!("{}", imported.toml),
    }
    eprint!("{}", imported.report.render());
    if strict && !imported.report.is_empty() {
        eprintln!("error: --strict: some of the input was not carried over as it was");
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
