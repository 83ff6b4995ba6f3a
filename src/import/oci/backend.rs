//! A route's OCI back end as a Portcullis `backend`: HTTP_BACKEND (URL with
//! `${request.path[NAME]}` turned into `{NAME}`, timeouts, `isSslVerifyDisabled`)
//! and STOCK_RESPONSE_BACKEND; the other OCI back-end types are findings and
//! their route is not imported. An unknown type is an error.

use super::json::{ImportError, Obj, Result};
use super::model::table;
use super::report::Finding;
use crate::http::fields::{is_hop_by_hop, is_token, is_valid_value};
use std::collections::BTreeMap;
use toml_edit::Value;

/// The OCI back-end types, for the unknown-type message.
const TYPES: &str = "HTTP_BACKEND, STOCK_RESPONSE_BACKEND, ORACLE_FUNCTIONS_BACKEND, DYNAMIC_ROUTING_BACKEND, OAUTH2_LOGOUT_BACKEND";

/// The `backend` value for a route whose path has `params` (`catch_all` is
/// the name of its `{name*}`, if any); `None` when the route cannot be
/// imported (the reason is in `findings`).
pub fn backend(
    mut obj: Obj<'_>,
    params: &[String],
    catch_all: Option<&str>,
    findings: &mut Vec<Finding>,
) -> Result<Option<Value>> {
    let kind_loc = obj.at("type");
    let kind = obj.str_req("type")?;
    let not_imported = |why: &str| format!("{why}; the route is not imported");
    match kind {
        "HTTP_BACKEND" => http(obj, params, catch_all, findings),
        "STOCK_RESPONSE_BACKEND" => stock(obj, findings),
        "ORACLE_FUNCTIONS_BACKEND" => {
            obj.raw("functionId");
            findings.push(Finding::new(
                obj.at("functionId"),
                not_imported("OCI Functions back ends have no equivalent in Portcullis"),
            ));
            Ok(None)
        }
        "DYNAMIC_ROUTING_BACKEND" => {
            findings.push(Finding::new(
                obj.loc().clone(),
                not_imported("dynamic routing back ends (selection by request context) are not yet supported"),
            ));
            Ok(None)
        }
        "OAUTH2_LOGOUT_BACKEND" => {
            findings.push(Finding::new(
                obj.loc().clone(),
                not_imported("OAuth2 logout back ends have no equivalent (Portcullis keeps no OAuth2 sessions)"),
            ));
            Ok(None)
        }
        other => Err(ImportError::at(
            &kind_loc,
            format!("unknown back-end type `{other}` (OCI's are {TYPES})"),
        )),
    }
}

fn http(
    mut obj: Obj<'_>,
    params: &[String],
    catch_all: Option<&str>,
    findings: &mut Vec<Finding>,
) -> Result<Option<Value>> {
    let url_loc = obj.at("url");
    let url = obj.str_req("url")?;
    let mut pairs: Vec<(&str, Value)> = vec![("type", "http".into())];
    let translated = match url_template(url, params) {
        Ok(t) => t,
        Err(why) => {
            findings.push(Finding::new(
                url_loc,
                format!("{why}; the route is not imported"),
            ));
            return Ok(None);
        }
    };
    if let Some(name) = catch_all {
        if !translated.contains(&format!("{{{name}}}")) {
            findings.push(Finding::new(
                url_loc,
                format!("the URL does not use `${{request.path[{name}]}}`: Portcullis appends the rest of the path matched by `{{{name}*}}` to the URL, OCI sent every request to the URL as written"),
            ));
        }
    }
    let https = translated.starts_with("https://");
    pairs.push(("url", translated.into()));
    for (oci, key) in [
        ("connectTimeoutInSeconds", "connect_timeout"),
        ("readTimeoutInSeconds", "read_timeout"),
        ("sendTimeoutInSeconds", "send_timeout"),
    ] {
        let loc = obj.at(oci);
        match obj.num_opt(oci)? {
            Some(seconds) if seconds > 0.0 => pairs.push((key, seconds.into())),
            Some(seconds) => findings.push(Finding::new(
                loc,
                format!("timeout {seconds} is not a positive number of seconds; Portcullis's default applies"),
            )),
            None => {}
        }
    }
    // On an http:// URL the flag changes nothing, in OCI as here.
    if obj.bool_opt("isSslVerifyDisabled")? == Some(true) && https {
        pairs.push(("tls_verify", false.into()));
    }
    obj.finish("HttpBackend", findings);
    Ok(Some(table(pairs)))
}

fn stock(mut obj: Obj<'_>, findings: &mut Vec<Finding>) -> Result<Option<Value>> {
    let status_loc = obj.at("status");
    let status = obj.int_req("status")?;
    let body_loc = obj.at("body");
    let body = obj.str_opt("body")?;
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (loc, value) in obj.array("headers")? {
        let mut field = Obj::new(value, loc.clone(), "a header field")?;
        let name = field.str_opt("name")?.unwrap_or_default();
        let value = field.str_opt("value")?.unwrap_or_default();
        field.finish("HeaderFieldSpecification", findings);
        if !is_token(name.as_bytes()) || !is_valid_value(value.as_bytes()) || is_hop_by_hop(name) {
            findings.push(Finding::new(
                loc,
                format!("header `{name}` cannot be sent by a stock back end (not a header name, a value with control characters, or a field the gateway writes itself); left out"),
            ));
            continue;
        }
        match headers
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some((_, existing)) => {
                findings.push(Finding::new(
                    loc,
                    format!("header `{name}` given twice: the values are joined with `, ` into one field"),
                ));
                existing.push_str(", ");
                existing.push_str(value);
            }
            None => {
                headers.insert(name.to_string(), value.to_string());
            }
        }
    }
    obj.finish("StockResponseBackend", findings);
    let status = match u16::try_from(status) {
        Ok(s) if (200..=599).contains(&s) => s,
        _ => {
            findings.push(Finding::new(
                status_loc,
                format!("stock status {status} is outside 200-599, which Portcullis answers; the route is not imported"),
            ));
            return Ok(None);
        }
    };
    let mut pairs: Vec<(&str, Value)> = vec![
        ("type", "stock".into()),
        ("status", i64::from(status).into()),
    ];
    if !headers.is_empty() {
        let mut t = toml_edit::InlineTable::new();
        for (name, value) in headers {
            t.insert(name.as_str(), value.into());
        }
        pairs.push(("headers", Value::InlineTable(t)));
    }
    match body {
        Some(body) if matches!(status, 204 | 304) && !body.is_empty() => {
            findings.push(Finding::new(
                body_loc,
                format!("a {status} answer has no body; the body is left out"),
            ));
        }
        Some(body) if !body.is_empty() => pairs.push(("body", body.into())),
        _ => {}
    }
    Ok(Some(table(pairs)))
}

/// An OCI back-end URL as a Portcullis URL template: `${request.path[NAME]}`
/// in the path becomes `{NAME}`; literal braces in the path are escaped.
/// Any other context variable, or one outside the path, cannot be carried.
pub fn url_template(url: &str, params: &[String]) -> std::result::Result<String, String> {
    let scheme_len = ["http://", "https://"]
        .iter()
        .find(|s| {
            url.get(..s.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(s))
        })
        .map(|s| s.len())
        .ok_or_else(|| "only http:// and https:// back-end URLs can be carried".to_string())?;
    let path_start = url[scheme_len..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| i + scheme_len);
    let path_end = url[path_start..]
        .find(['?', '#'])
        .map_or(url.len(), |i| i + path_start);
    let mut out = url[..scheme_len].to_ascii_lowercase();
    let mut i = scheme_len;
    while i < url.len() {
        let rest = &url[i..];
        if let Some(after) = rest.strip_prefix("${") {
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in back-end URL `{url}`"))?;
            let variable = &after[..close];
            let param = variable
                .strip_prefix("request.path[")
                .and_then(|v| v.strip_suffix(']'))
                .filter(|name| params.iter().any(|p| p == name));
            match param {
                Some(name) if i >= path_start && i < path_end => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
                _ => {
                    return Err(format!(
                        "`${{{variable}}}` in the back-end URL has no Portcullis equivalent (only `${{request.path[NAME]}}` of the route's own parameters, in the URL's path)"
                    ))
                }
            }
            i += 2 + close + 1;
            continue;
        }
        let Some(c) = rest.chars().next() else { break };
        match c {
            '{' if i >= path_start && i < path_end => out.push_str("%7B"),
            '}' if i >= path_start && i < path_end => out.push_str("%7D"),
            _ => out.push(c),
        }
        i += c.len_utf8();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::url_template;

    fn params() -> Vec<String> {
        vec!["id".into(), "rest".into()]
    }

    // Path parameters in the URL's path become Portcullis placeholders.
    #[test]
    fn path_variables_become_placeholders() {
        assert_eq!(
            url_template(
                "https://oic.example.com/ic/api/${request.path[id]}/x/${request.path[rest]}?a=1",
                &params()
            ),
            Ok("https://oic.example.com/ic/api/{id}/x/{rest}?a=1".to_string())
        );
    }

    // Other variables, unknown parameters and variables in the host are refused.
    #[test]
    fn other_variables_are_refused() {
        for url in [
            "http://h/${request.query[a]}",
            "http://h/${request.path[nope]}",
            "http://${request.path[id]}.example.com/",
            "http://h/a?x=${request.path[id]}",
            "ftp://h/",
        ] {
            assert!(url_template(url, &params()).is_err(), "{url}");
        }
    }
}

#[cfg(test)]
mod http_tests {
    use super::backend;
    use crate::import::oci::json::Obj;
    use crate::import::oci::report::Loc;
    use serde_json::json;

    // Timeouts carry over, and a disabled certificate check becomes tls_verify = false.
    #[test]
    fn http_backend_keys() {
        let value = json!({"type": "HTTP_BACKEND", "url": "https://oic.example.com/ic/${request.path[id]}",
            "connectTimeoutInSeconds": 5, "readTimeoutInSeconds": 30.5, "isSslVerifyDisabled": true});
        let obj = Obj::new(&value, Loc::root("f"), "a back end").unwrap();
        let mut findings = Vec::new();
        let written = backend(obj, &["id".to_string()], None, &mut findings)
            .unwrap()
            .unwrap()
            .to_string();
        assert_eq!(
            (written.as_str(), findings.len()),
            (
                "{ type = \"http\", url = \"https://oic.example.com/ic/{id}\", connect_timeout = 5.0, read_timeout = 30.5, tls_verify = false }",
                0
            )
        );
    }
}
