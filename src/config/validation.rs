//! A route's `validation` table, as written: required header fields and
//! query parameters (with allowed values or a pattern), allowed content
//! types, and an optional JSON Schema for JSON bodies. Compiled and applied
//! by `policy::validation`.

use serde::Deserialize;

/// What the gateway does with a request that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationMode {
    /// Refuse it: 400 with a problem document listing each failed rule.
    #[default]
    Enforcing,
    /// Forward it; the access log and the decision counters say it failed.
    Permissive,
    /// Rules kept in the file, not applied.
    Disabled,
}

/// `validation` on a route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationConfig {
    #[serde(default)]
    pub mode: ValidationMode,
    /// Header fields the request must (or may) carry.
    #[serde(default)]
    pub headers: Vec<FieldRule>,
    /// Query parameters the request must (or may) carry.
    #[serde(default)]
    pub query: Vec<FieldRule>,
    /// Media types a request with a body may declare (`type/subtype`,
    /// `type/*`); empty: any. A body without `Content-Type` fails.
    #[serde(default)]
    pub content_types: Vec<String>,
    /// A JSON Schema file (relative to the config file's directory) that a
    /// JSON body must satisfy; the body is then read whole before forwarding.
    #[serde(default)]
    pub body_schema: Option<String>,
    /// Largest body read for `body_schema`, in bytes (413 above).
    #[serde(default)]
    pub max_body_bytes: Option<u64>,
}

/// One header field or query parameter rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    pub name: String,
    /// Must be present (default true); a rule with `required = false` checks
    /// the value only when it is given.
    #[serde(default = "yes")]
    pub required: bool,
    /// The value must be one of these (exact match).
    #[serde(default)]
    pub values: Vec<String>,
    /// The whole value must match this regular expression.
    #[serde(default)]
    pub pattern: Option<String>,
}

fn yes() -> bool {
    true
}
