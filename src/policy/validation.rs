//! Request validation, the last step of the policy chain (after usage plans,
//! so invalid requests still spend their caller's rate and quota): required
//! header fields and query parameters with allowed values or a pattern,
//! allowed content types, and a JSON Schema for JSON bodies.
//!
//! `enforcing` refuses a request that breaks any rule with 400 and an
//! RFC 9457 problem document listing every failed rule; `permissive` forwards
//! it and marks it (decision `validation.requestFailedButAllowed`);
//! `disabled` compiles to nothing.
//!
//! A route with a body schema reads the body whole before anything is
//! forwarded: the request is planned only once its `Content-Length` bytes are
//! in the read buffer ([`ValidationSpec::waits_for_body`]), up to
//! `max_body_bytes` (413 above). Such a route needs a declared length (411
//! for a chunked body) and does not send `100 Continue` ahead of a body it
//! must read first (417: clients then send the body without the
//! expectation). The body is then forwarded as read. Schema errors are
//! reported with the failing location, never with the client's values.

use crate::config::validation::{FieldRule, ValidationConfig, ValidationMode};
use crate::http::request::RequestHead;
use crate::http::BodyFraming;
use crate::telemetry::format::write_json_str;
use regex::bytes::Regex;

/// Largest body read for a body schema when the route does not say.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;

/// Failed rules reported in one problem document, at most.
const MAX_REPORTED: usize = 20;

/// A route's compiled validation (absent when `disabled` or empty).
#[derive(Debug)]
pub struct ValidationSpec {
    pub mode: ValidationMode,
    headers: Vec<FieldCheck>,
    query: Vec<FieldCheck>,
    content_types: Vec<MediaRange>,
    body: Option<BodySchema>,
}

#[derive(Debug)]
struct FieldCheck {
    name: Box<str>,
    required: bool,
    values: Vec<Box<[u8]>>,
    pattern: Option<Regex>,
}

/// `type/subtype`, `type/*` or `*/*`, lower case.
#[derive(Debug)]
struct MediaRange {
    kind: Box<str>,
    subtype: Option<Box<str>>,
}

struct BodySchema {
    validator: jsonschema::Validator,
    max_bytes: u64,
}

impl std::fmt::Debug for BodySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BodySchema(max {} bytes)", self.max_bytes)
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `header`, `query`, `content_type` or `body`.
    pub rule: &'static str,
    /// The field, parameter or JSON location concerned.
    pub name: String,
    pub detail: String,
}

/// What validation decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Refused (enforcing) or marked (permissive).
    Failed {
        status: u16,
        failures: Vec<Failure>,
    },
}

/// Compiles a route's `validation` table; errors are (key, message).
pub fn compile(
    config: &ValidationConfig,
    schema_text: Option<&str>,
) -> Result<Option<ValidationSpec>, (String, String)> {
    let headers = fields(&config.headers, "headers", true)?;
    let query = fields(&config.query, "query", false)?;
    let mut content_types = Vec::new();
    for (i, text) in config.content_types.iter().enumerate() {
        let range = MediaRange::parse(text).ok_or_else(|| {
            (
                format!("content_types[{i}]"),
                format!("`{text}` is not a media type (`type/subtype`, `type/*` or `*/*`)"),
            )
        })?;
        content_types.push(range);
    }
    if config.max_body_bytes.is_some() && config.body_schema.is_none() {
        return Err((
            "max_body_bytes".to_string(),
            "`max_body_bytes` applies only with a `body_schema`".to_string(),
        ));
    }
    let body = match (&config.body_schema, schema_text) {
        (Some(path), Some(text)) => Some(body_schema(path, text, config.max_body_bytes)?),
        (Some(path), None) => {
            return Err((
                "body_schema".to_string(),
                format!("cannot read the JSON Schema {path}"),
            ))
        }
        (None, _) => None,
    };
    let spec = ValidationSpec {
        mode: config.mode,
        headers,
        query,
        content_types,
        body,
    };
    let empty = spec.headers.is_empty()
        && spec.query.is_empty()
        && spec.content_types.is_empty()
        && spec.body.is_none();
    Ok((config.mode != ValidationMode::Disabled && !empty).then_some(spec))
}

fn fields(
    rules: &[FieldRule],
    key: &str,
    header: bool,
) -> Result<Vec<FieldCheck>, (String, String)> {
    let mut out: Vec<FieldCheck> = Vec::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        let at = |k: &str| format!("{key}[{i}].{k}");
        if rule.name.is_empty() || (header && !crate::http::fields::is_token(rule.name.as_bytes()))
        {
            return Err((at("name"), format!("`{}` is not a valid name", rule.name)));
        }
        let same = |o: &FieldCheck| {
            if header {
                o.name.eq_ignore_ascii_case(&rule.name)
            } else {
                *o.name == *rule.name
            }
        };
        if out.iter().any(same) {
            return Err((at("name"), format!("`{}` has two rules", rule.name)));
        }
        let pattern = match &rule.pattern {
            // The whole value must match: anchored here, whatever was written.
            Some(p) => Some(
                Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| (at("pattern"), format!("not a regular expression: {e}")))?,
            ),
            None => None,
        };
        out.push(FieldCheck {
            name: rule.name.as_str().into(),
            required: rule.required,
            values: rule.values.iter().map(|v| v.as_bytes().into()).collect(),
            pattern,
        });
    }
    Ok(out)
}

fn body_schema(path: &str, text: &str, max: Option<u64>) -> Result<BodySchema, (String, String)> {
    let key = || "body_schema".to_string();
    let schema: serde_json::Value =
        serde_json::from_str(text).map_err(|e| (key(), format!("{path} is not JSON: {e}")))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| (key(), format!("{path} is not a usable JSON Schema: {e}")))?;
    let max_bytes = max.unwrap_or(DEFAULT_MAX_BODY_BYTES);
    if max_bytes == 0 {
        return Err((
            "max_body_bytes".to_string(),
            "must be at least 1".to_string(),
        ));
    }
    Ok(BodySchema {
        validator,
        max_bytes,
    })
}

impl MediaRange {
    fn parse(text: &str) -> Option<MediaRange> {
        let (kind, subtype) = text.trim().split_once('/')?;
        let token = |s: &str| crate::http::fields::is_token(s.as_bytes());
        if !token(kind) || !token(subtype) || (kind == "*" && subtype != "*") {
            return None;
        }
        Some(MediaRange {
            kind: kind.to_ascii_lowercase().into(),
            subtype: (subtype != "*").then(|| subtype.to_ascii_lowercase().into()),
        })
    }

    fn matches(&self, kind: &str, subtype: &str) -> bool {
        (&*self.kind == "*" || self.kind.eq_ignore_ascii_case(kind))
            && self
                .subtype
                .as_deref()
                .is_none_or(|s| s.eq_ignore_ascii_case(subtype))
    }
}

impl ValidationSpec {
    /// Whether the request must stay unplanned until more of its body is
    /// read: a body schema, a declared length within the limit, not all here
    /// yet, and no `100 Continue` expected first.
    pub fn waits_for_body(&self, head: &RequestHead<'_, '_>, body_available: usize) -> bool {
        match (&self.body, head.body) {
            (Some(schema), BodyFraming::Length(n)) => {
                n <= schema.max_bytes && (body_available as u64) < n && !head.expect_continue
            }
            _ => false,
        }
    }

    /// Checks every rule; `body` is what follows the head in the read buffer.
    pub fn check(&self, head: &RequestHead<'_, '_>, body: &[u8]) -> Verdict {
        if let Some(status) = self.framing_refusal(head, body.len()) {
            let detail = match status {
                413 => "the body is larger than this route validates",
                411 => "this route validates bodies of a declared Content-Length only",
                _ => "this route reads the body before answering; send it without Expect",
            };
            let failure = Failure {
                rule: "body",
                name: String::new(),
                detail: detail.to_string(),
            };
            return Verdict::Failed {
                status,
                failures: vec![failure],
            };
        }
        let mut failures = Vec::new();
        for rule in &self.headers {
            let value = head
                .headers
                .iter()
                .find(|h| crate::http::fields::same_name(h.name, &rule.name))
                .map(|h| crate::http::fields::trim_ows(h.value));
            rule.check("header", value, &mut failures);
        }
        for rule in &self.query {
            let value = head
                .query
                .and_then(|q| crate::http::query::values(q, &rule.name).next())
                .map(|v| crate::http::query::percent_decode(v.as_bytes()));
            rule.check("query", value.as_deref(), &mut failures);
        }
        let has_body = !matches!(head.body, BodyFraming::None | BodyFraming::Length(0));
        if has_body && !self.content_types.is_empty() {
            self.check_content_type(head, &mut failures);
        }
        if let (Some(schema), true) = (&self.body, has_body) {
            let end = match head.body {
                BodyFraming::Length(n) => (n as usize).min(body.len()),
                _ => 0,
            };
            schema.check(&body[..end], &mut failures);
        }
        if failures.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Failed {
                status: 400,
                failures,
            }
        }
    }

    /// 413, 411 or 417 when a body schema cannot be applied to this framing.
    fn framing_refusal(&self, head: &RequestHead<'_, '_>, available: usize) -> Option<u16> {
        let schema = self.body.as_ref()?;
        match head.body {
            BodyFraming::Length(n) if n > schema.max_bytes => Some(413),
            BodyFraming::Length(n) if (available as u64) < n => Some(417),
            BodyFraming::Chunked | BodyFraming::UntilClose => Some(411),
            _ => None,
        }
    }

    fn check_content_type(&self, head: &RequestHead<'_, '_>, failures: &mut Vec<Failure>) {
        let declared = head
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-type"))
            .map(|h| String::from_utf8_lossy(h.value));
        let essence = declared
            .as_deref()
            .map(|v| v.split(';').next().unwrap_or("").trim())
            .and_then(|v| v.split_once('/'));
        let allowed = essence.is_some_and(|(kind, subtype)| {
            self.content_types.iter().any(|r| r.matches(kind, subtype))
        });
        if !allowed {
            failures.push(Failure {
                rule: "content_type",
                name: "Content-Type".to_string(),
                detail: match declared {
                    None => "missing".to_string(),
                    Some(_) => "not an allowed media type".to_string(),
                },
            });
        }
    }
}

impl FieldCheck {
    #[inline]
    fn check(&self, rule: &'static str, value: Option<&[u8]>, failures: &mut Vec<Failure>) {
        let fail = |detail: &str| Failure {
            rule,
            name: self.name.to_string(),
            detail: detail.to_string(),
        };
        let Some(value) = value else {
            if self.required {
                failures.push(fail("missing"));
            }
            return;
        };
        if !self.values.is_empty() && !self.values.iter().any(|v| **v == *value) {
            failures.push(fail("not one of the allowed values"));
        } else if self.pattern.as_ref().is_some_and(|p| !p.is_match(value)) {
            failures.push(fail("does not match the pattern"));
        }
    }
}

impl BodySchema {
    fn check(&self, body: &[u8], failures: &mut Vec<Failure>) {
        let value: serde_json::Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(_) => {
                failures.push(Failure {
                    rule: "body",
                    name: String::new(),
                    detail: "not valid JSON".to_string(),
                });
                return;
            }
        };
        for error in self.validator.iter_errors(&value).take(MAX_REPORTED) {
            failures.push(Failure {
                rule: "body",
                name: error.instance_path().to_string(),
                // Masked: the message names the rule, never the client's value.
                detail: error.masked().to_string(),
            });
        }
    }
}

/// Writes the RFC 9457 problem document for `failures` (as `application/problem+json`).
pub fn write_problem(out: &mut Vec<u8>, status: u16, failures: &[Failure]) {
    use std::io::Write;
    let title = crate::http::status::reason(status);
    out.extend_from_slice(b"{\"type\":\"about:blank\",\"title\":");
    write_json_str(out, title.as_bytes());
    let _ = write!(out, ",\"status\":{status},\"detail\":");
    write_json_str(
        out,
        b"The request does not satisfy the validation rules of this route.",
    );
    out.extend_from_slice(b",\"errors\":[");
    for (i, failure) in failures.iter().take(MAX_REPORTED).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"rule\":");
        write_json_str(out, failure.rule.as_bytes());
        out.extend_from_slice(b",\"name\":");
        write_json_str(out, failure.name.as_bytes());
        out.extend_from_slice(b",\"detail\":");
        write_json_str(out, failure.detail.as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

#[cfg(test)]
#[path = "validation_tests.rs"]
mod tests;
