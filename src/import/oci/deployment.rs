//! One OCI API deployment (`deployment get`: `id`, `pathPrefix`,
//! `displayName`, `specification`) or a bare deployment specification as a
//! Portcullis `[[deployments]]` table with its routes: paths with `{param}`
//! and `{param*}`, methods, back ends, and the deployment's and routes'
//! policies (translated by [`super::request_policies`] and
//! [`super::route_policies`]).

use super::backend::backend;
use super::json::{ImportError, Obj, Result};
use super::model::{strings, DeploymentOut, Section};
use super::names::{from_ocid, from_prefix, Names};
use super::report::{Finding, Loc};
use super::request_policies::{request_policies, Facts};
use super::route_policies;
use serde_json::Value;

/// OCI's route methods; `ANY` is every method.
const METHODS: [&str; 8] = [
    "ANY", "HEAD", "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
];

const LOGGING: &str =
    "OCI Logging has no equivalent here; Portcullis writes its own access log (`access_log`)";

/// Translates one deployment; `fallback` names it when OCI gives no name.
pub fn deployment(
    loc: Loc,
    value: &Value,
    listener: &str,
    fallback: &str,
    names: &mut Names,
) -> Result<DeploymentOut> {
    let mut obj = Obj::new(
        value,
        loc.clone(),
        "an API deployment or a deployment specification",
    )?;
    let mut out = DeploymentOut::default();
    let mut findings = Vec::new();
    let full = obj.has("specification");
    if !full
        && !["routes", "requestPolicies", "loggingPolicies"]
            .iter()
            .any(|k| obj.has(k))
    {
        let why = if obj.has("pathPrefix") {
            "a deployment summary (from `deployment list`) has no specification: export each deployment with `oci api-gateway deployment get`"
        } else {
            "neither an API deployment (no `specification`) nor a deployment specification (no `routes`)"
        };
        return Err(ImportError::at(&loc, why));
    }
    let (prefix, mut spec, outer) = if full {
        out.id = obj.str_opt("id")?.map(str::to_string);
        let display = obj.str_opt("displayName")?;
        let prefix = obj.str_req("pathPrefix")?.to_string();
        let endpoint = obj.str_opt("endpoint")?;
        obj.report_inactive("the deployment", &mut findings)?;
        // The gateway a deployment runs on is OCI infrastructure, not a request policy.
        obj.metadata(&["gatewayId"]);
        obj.metadata(&super::json::RESOURCE_METADATA);
        let prefix_name = from_prefix(&prefix);
        let ocid_name = out.id.as_deref().and_then(from_ocid);
        out.name = names.unique(
            &[display, prefix_name.as_deref(), ocid_name.as_deref()],
            fallback,
        );
        out.section.comment(format!(
            "OCI deployment {}{}",
            out.id.as_deref().unwrap_or("(no id)"),
            endpoint.map(|e| format!(" at {e}")).unwrap_or_default()
        ));
        let spec = obj.obj_req("specification", "a deployment specification")?;
        (prefix, spec, Some(obj))
    } else {
        out.name = names.unique(&[], fallback);
        out.section.comment(format!(
            "deployment specification from {}: it names no path prefix, so its routes are served from the root (set `path_prefix`)",
            loc.file()
        ));
        (String::new(), obj, None)
    };
    out.section.set("name", out.name.as_str());
    out.section.set("listener", listener);
    let prefix = prefix.trim_end_matches('/').to_string();
    if !prefix.is_empty() {
        out.section.set("path_prefix", prefix.as_str());
    }
    let facts = match spec.obj_opt("requestPolicies", "the deployment's request policies")? {
        Some(policies) => request_policies(policies, &mut out, &mut findings)?,
        None => Facts::default(),
    };
    if let Some(policies) = spec.obj_opt("loggingPolicies", "logging policies")? {
        logging(policies, &mut findings)?;
    }
    for (route_loc, value) in spec.array("routes")? {
        out.routes.push(route(route_loc, value, &prefix, facts)?);
    }
    spec.finish("ApiSpecification", &mut findings);
    if let Some(outer) = outer {
        outer.finish("Deployment", &mut findings);
    }
    out.section.findings = findings;
    Ok(out)
}

/// One route; a route that cannot be imported is written commented out.
fn route(loc: Loc, value: &Value, prefix: &str, facts: Facts) -> Result<Section> {
    let mut obj = Obj::new(value, loc, "a route")?;
    let mut section = Section::default();
    let mut findings = Vec::new();
    let path_loc = obj.at("path");
    let path = obj.str_req("path")?;
    section.set("path", path);
    let mut methods = Vec::new();
    for (method_loc, method) in obj.array("methods")? {
        match method.as_str().filter(|m| METHODS.contains(m)) {
            Some(m) => methods.push(m.to_string()),
            None => {
                return Err(ImportError::at(
                    &method_loc,
                    format!("unknown method {method} (OCI's are {})", METHODS.join(", ")),
                ))
            }
        }
    }
    if !methods.is_empty() && !methods.iter().any(|m| m == "ANY") {
        section.set("methods", strings(&methods));
    }
    let pattern = format!("{prefix}{path}");
    let params = match crate::route::table::param_names(&pattern) {
        Ok(params) => params,
        Err(e) => {
            findings.push(Finding::new(
                path_loc,
                format!("Portcullis cannot route `{pattern}` ({e}); the route is not imported"),
            ));
            section.skipped = true;
            Vec::new()
        }
    };
    let catch_all = pattern
        .ends_with("*}")
        .then(|| params.last().map(String::as_str))
        .flatten();
    let backend_obj = obj.obj_req("backend", "a back end")?;
    match backend(backend_obj, &params, catch_all, &mut findings)? {
        Some(value) => section.set("backend", value),
        None => section.skipped = true,
    }
    if let Some(policies) = obj.obj_opt("requestPolicies", "the route's request policies")? {
        route_policies::request(policies, &mut section, &params, facts, &mut findings)?;
    }
    if let Some(policies) = obj.obj_opt("responsePolicies", "the route's response policies")? {
        route_policies::response(policies, &mut section, &params, &mut findings)?;
    }
    if let Some(policies) = obj.obj_opt("loggingPolicies", "logging policies")? {
        logging(policies, &mut findings)?;
    }
    obj.finish("ApiSpecificationRoute", &mut findings);
    if section.skipped {
        section.comment("route not imported (see below)");
    }
    section.findings = findings;
    Ok(section)
}

/// `loggingPolicies`: an enabled OCI access or execution log is a finding.
fn logging(mut obj: Obj<'_>, findings: &mut Vec<Finding>) -> Result<()> {
    for (key, model) in [
        ("accessLog", "AccessLogPolicy"),
        ("executionLog", "ExecutionLogPolicy"),
    ] {
        if let Some(mut log) = obj.obj_opt(key, "a log policy")? {
            let enabled_loc = log.at("isEnabled");
            let enabled = log.bool_opt("isEnabled")?;
            log.str_opt("logLevel")?;
            log.finish(model, findings);
            if enabled == Some(true) {
                findings.push(Finding::new(enabled_loc, LOGGING));
            }
        }
    }
    obj.finish("ApiSpecificationLoggingPolicies", findings);
    Ok(())
}
