//! OCI's HeaderTransformationPolicy (on a route's request or response) as a
//! Portcullis `request_headers` / `response_headers` table: `filterHeaders`
//! BLOCK → `remove`, ALLOW → `keep_only`, `renameHeaders` → `rename`,
//! `setHeaders` → `set` (one rule per value, same `if_exists`). Each item is
//! compiled with the gateway's own header compiler; an item it refuses (a
//! header the gateway owns, a context variable it lacks) is a finding.

use super::json::{ImportError, Obj, Result};
use super::model::{array, parse_as, strings, table};
use super::report::Finding;
use crate::config::{HeaderTransformConfig, IfExists, RenameHeader, SetHeader};
use crate::policy::headers::HeaderTransform;
use toml_edit::Value;

/// The table, or `None` when nothing in it could be carried.
pub fn transformation(
    mut obj: Obj<'_>,
    params: &[String],
    findings: &mut Vec<Finding>,
) -> Result<Option<Value>> {
    let check = |config: HeaderTransformConfig| {
        HeaderTransform::compile(&config, params)
            .map(|_| ())
            .map_err(|(_, message)| message)
    };
    let loc = obj.loc().clone();
    let mut pairs: Vec<(&str, Value)> = Vec::new();
    if let Some(mut filter) = obj.obj_opt("filterHeaders", "a header filter")? {
        let kind_loc = filter.at("type");
        let kind = filter.str_req("type")?;
        let mut names = Vec::new();
        for (loc, value) in filter.array("items")? {
            let mut item = Obj::new(value, loc.clone(), "a header filter item")?;
            let name = item.str_req("name")?.to_string();
            item.finish("FilterHeaderPolicyItem", findings);
            let config = match kind {
                "BLOCK" => HeaderTransformConfig {
                    remove: vec![name.clone()],
                    ..Default::default()
                },
                _ => HeaderTransformConfig {
                    keep_only: Some(vec![name.clone()]),
                    ..Default::default()
                },
            };
            match check(config) {
                Ok(()) => names.push(name),
                Err(why) => findings.push(Finding::new(loc, why)),
            }
        }
        filter.finish("FilterHeaderPolicy", findings);
        match kind {
            "BLOCK" if !names.is_empty() => pairs.push(("remove", strings(&names))),
            "BLOCK" => {}
            // An empty allow list still drops every other field.
            "ALLOW" => pairs.push(("keep_only", strings(&names))),
            other => {
                return Err(ImportError::at(
                    &kind_loc,
                    format!("unknown header filter type `{other}` (OCI's are BLOCK, ALLOW)"),
                ))
            }
        }
    }
    if let Some(mut rename) = obj.obj_opt("renameHeaders", "a header rename policy")? {
        let mut renames = Vec::new();
        for (loc, value) in rename.array("items")? {
            let mut item = Obj::new(value, loc.clone(), "a header rename item")?;
            let from = item.str_req("from")?.to_string();
            let to = item.str_req("to")?.to_string();
            item.finish("RenameHeaderPolicyItem", findings);
            let config = HeaderTransformConfig {
                rename: vec![RenameHeader {
                    from: from.clone(),
                    to: to.clone(),
                }],
                ..Default::default()
            };
            match check(config) {
                Ok(()) => renames.push(table(vec![("from", from.into()), ("to", to.into())])),
                Err(why) => findings.push(Finding::new(loc, why)),
            }
        }
        rename.finish("RenameHeaderPolicy", findings);
        if !renames.is_empty() {
            pairs.push(("rename", array(renames)));
        }
    }
    if let Some(mut set) = obj.obj_opt("setHeaders", "a set-header policy")? {
        let mut rules = Vec::new();
        for (loc, value) in set.array("items")? {
            let mut item = Obj::new(value, loc.clone(), "a set-header item")?;
            let name = item.str_req("name")?.to_string();
            let values = item.strings("values")?;
            let mode_loc = item.at("ifExists");
            let (mode, mode_name) = match item.str_opt("ifExists")?.unwrap_or("OVERWRITE") {
                "OVERWRITE" => (IfExists::Overwrite, "overwrite"),
                "APPEND" => (IfExists::Append, "append"),
                "SKIP" => (IfExists::Skip, "skip"),
                other => {
                    return Err(ImportError::at(
                        &mode_loc,
                        format!("unknown ifExists `{other}` (OCI's are OVERWRITE, APPEND, SKIP)"),
                    ))
                }
            };
            item.finish("SetHeaderPolicyItem", findings);
            let config = HeaderTransformConfig {
                set: values
                    .iter()
                    .map(|value| SetHeader {
                        name: name.clone(),
                        value: Some(crate::config::SecretSource::Inline(value.clone())),
                        if_exists: mode,
                    })
                    .collect(),
                ..Default::default()
            };
            match check(config) {
                Ok(()) => {
                    for value in values {
                        rules.push(table(vec![
                            ("name", name.as_str().into()),
                            ("value", value.into()),
                            ("if_exists", mode_name.into()),
                        ]));
                    }
                }
                Err(why) => findings.push(Finding::new(loc, why)),
            }
        }
        set.finish("SetHeaderPolicy", findings);
        if !rules.is_empty() {
            pairs.push(("set", array(rules)));
        }
    }
    obj.finish("HeaderTransformationPolicy", findings);
    if pairs.is_empty() {
        return Ok(None);
    }
    let value = table(pairs);
    match parse_as::<HeaderTransformConfig>(&value).and_then(check) {
        Ok(()) => Ok(Some(value)),
        Err(why) => {
            findings.push(Finding::new(
                loc,
                format!("Portcullis refuses the combined header transformation ({why}); left out"),
            ));
            Ok(None)
        }
    }
}
