//! OCI usage plans (`usage-plan get` / `list`) as Portcullis `[[usage_plans]]`:
//! each entitlement's `rateLimit` (per second), `quota` (value, unit, CALENDAR
//! reset, REJECT / ALLOW on breach) and `targets`, whose deployment OCIDs are
//! mapped to the imported deployments' names.

use super::json::{ImportError, Obj, Result};
use super::model::{strings, table, PlanOut, Section};
use super::names::{from_ocid, Names};
use super::report::{Finding, Loc};
use serde_json::Value;

/// Translates one usage plan; `deployments` are the imported deployments'
/// (OCID, name) pairs.
pub fn plan(
    loc: Loc,
    value: &Value,
    deployments: &[(String, String)],
    names: &mut Names,
) -> Result<PlanOut> {
    let mut obj = Obj::new(value, loc, "a usage plan")?;
    let mut out = PlanOut::default();
    let mut findings = Vec::new();
    out.id = obj.str_opt("id")?.map(str::to_string);
    let display = obj.str_opt("displayName")?;
    obj.report_inactive("the usage plan", &mut findings)?;
    obj.metadata(&super::json::RESOURCE_METADATA);
    let ocid_name = out.id.as_deref().and_then(from_ocid);
    out.name = names.unique(&[display, ocid_name.as_deref()], "usage-plan");
    out.section.comment(format!(
        "OCI usage plan {}",
        out.id.as_deref().unwrap_or("(no id)")
    ));
    out.section.set("name", out.name.as_str());
    let mut entitlement_names = Names::default();
    for (ent_loc, value) in obj.array("entitlements")? {
        out.entitlements.push(entitlement(
            ent_loc,
            value,
            deployments,
            &mut entitlement_names,
        )?);
    }
    obj.finish("UsagePlan", &mut findings);
    out.section.findings = findings;
    Ok(out)
}

fn entitlement(
    loc: Loc,
    value: &Value,
    deployments: &[(String, String)],
    names: &mut Names,
) -> Result<Section> {
    let mut obj = Obj::new(value, loc.clone(), "an entitlement")?;
    let mut section = Section::default();
    let mut findings = Vec::new();
    let name = names.unique(&[Some(obj.str_req("name")?)], "entitlement");
    if let Some(description) = obj.str_opt("description")? {
        section.comment(description);
    }
    section.set("name", name.as_str());
    let mut targets = Vec::new();
    let has_targets = obj.has("targets");
    for (target_loc, value) in obj.array("targets")? {
        let mut target = Obj::new(value, target_loc.clone(), "an entitlement target")?;
        let id = target.str_req("deploymentId")?;
        target.finish("EntitlementTarget", &mut findings);
        match deployments.iter().find(|(ocid, _)| ocid == id) {
            Some((_, name)) if !targets.contains(name) => targets.push(name.clone()),
            Some(_) => {}
            None => findings.push(Finding::new(
                target_loc.key("deploymentId"),
                format!("deployment {id} is not among the imported deployments (give its `deployment get` export with --deployment)"),
            )),
        }
    }
    if targets.is_empty() {
        section.skipped = true;
        let why = if has_targets {
            "none of its target deployments was imported; the entitlement is not imported"
        } else {
            "it names no target deployments (`usage-plan list` leaves them out: export the plan with `oci api-gateway usage-plan get`); the entitlement is not imported"
        };
        findings.push(Finding::new(loc.key("targets"), why));
    }
    section.set("deployments", strings(&targets));
    if let Some(mut rate) = obj.obj_opt("rateLimit", "a rate limit")? {
        let value_loc = rate.at("value");
        let per_second = rate.int_req("value")?;
        let unit_loc = rate.at("unit");
        match rate.str_opt("unit")?.unwrap_or("SECOND") {
            "SECOND" => {}
            other => {
                return Err(ImportError::at(
                    &unit_loc,
                    format!("unknown rate limit unit `{other}` (OCI's is SECOND)"),
                ))
            }
        }
        rate.finish("RateLimit", &mut findings);
        if per_second > 0 {
            section.set(
                "rate_limit",
                table(vec![("requests_per_second", (per_second as f64).into())]),
            );
        } else {
            findings.push(Finding::new(
                value_loc,
                "a rate of no requests per second cannot be carried; no rate limit",
            ));
        }
    }
    if let Some(quota) = obj.obj_opt("quota", "a quota")? {
        if let Some(value) = self::quota(quota, &mut findings)? {
            section.set("quota", value);
        }
    }
    obj.finish("Entitlement", &mut findings);
    section.findings = findings;
    Ok(section)
}

fn quota(mut obj: Obj<'_>, findings: &mut Vec<Finding>) -> Result<Option<toml_edit::Value>> {
    let value_loc = obj.at("value");
    let limit = obj.int_req("value")?;
    let unit_loc = obj.at("unit");
    let period = match obj.str_req("unit")? {
        "MINUTE" => "minute",
        "HOUR" => "hour",
        "DAY" => "day",
        "WEEK" => "week",
        "MONTH" => "month",
        other => {
            return Err(ImportError::at(
                &unit_loc,
                format!("unknown quota unit `{other}` (OCI's are MINUTE, HOUR, DAY, WEEK, MONTH)"),
            ))
        }
    };
    let reset_loc = obj.at("resetPolicy");
    match obj.str_opt("resetPolicy")?.unwrap_or("CALENDAR") {
        "CALENDAR" => {}
        other => {
            return Err(ImportError::at(
                &reset_loc,
                format!("unknown quota reset policy `{other}` (OCI's is CALENDAR)"),
            ))
        }
    }
    let breach_loc = obj.at("operationOnBreach");
    let on_breach = match obj.str_opt("operationOnBreach")?.unwrap_or("REJECT") {
        "REJECT" => "reject",
        "ALLOW" => "allow",
        other => {
            return Err(ImportError::at(
                &breach_loc,
                format!("unknown operation on breach `{other}` (OCI's are REJECT, ALLOW)"),
            ))
        }
    };
    obj.finish("Quota", findings);
    if limit < 1 {
        findings.push(Finding::new(
            value_loc,
            "a quota of no requests cannot be carried (Portcullis quotas are at least 1); no quota",
        ));
        return Ok(None);
    }
    Ok(Some(table(vec![
        ("limit", limit.into()),
        ("period", period.into()),
        ("on_breach", on_breach.into()),
    ])))
}
