//! The Portcullis config an OCI import produces, before it is written: one
//! [`Section`] per TOML table, each with its comments and the findings that
//! belong at its place. The translators fill it; [`super::writer`] writes it.
//!
//! A leaf: values are `toml_edit` values (so strings are escaped by the TOML
//! library), and nothing here reads JSON.

use super::report::Finding;
use toml_edit::{Array, InlineTable, Value};

/// One TOML table: `key = value` lines with comments above.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// Comment lines written above the table (without `#`).
    pub comments: Vec<String>,
    /// What could not be carried over here, written as comments too.
    pub findings: Vec<Finding>,
    pub entries: Vec<(String, Value)>,
    /// Not imported: the table is written commented out.
    pub skipped: bool,
}

impl Section {
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.entries.push((key.to_string(), value.into()));
    }

    pub fn comment(&mut self, line: impl Into<String>) {
        self.comments.push(line.into());
    }
}

/// A `[[deployments]]` table with its sub-tables and routes.
#[derive(Debug, Clone, Default)]
pub struct DeploymentOut {
    /// The OCI deployment's OCID, which entitlements target.
    pub id: Option<String>,
    pub name: String,
    pub section: Section,
    /// `[deployments.NAME]` tables (e.g. `authentication`).
    pub tables: Vec<(String, Section)>,
    pub routes: Vec<Section>,
}

/// A `[[usage_plans]]` table and its entitlements.
#[derive(Debug, Clone, Default)]
pub struct PlanOut {
    /// The OCI usage plan's OCID, which subscribers name.
    pub id: Option<String>,
    pub name: String,
    pub section: Section,
    pub entitlements: Vec<Section>,
}

/// A `[[subscribers]]` table and its clients.
#[derive(Debug, Clone, Default)]
pub struct SubscriberOut {
    pub section: Section,
    pub clients: Vec<Section>,
}

/// The whole output file.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Comment lines at the top of the file.
    pub header: Vec<String>,
    /// Findings about whole input files (e.g. a list with more pages).
    pub findings: Vec<Finding>,
    pub listener: Section,
    pub deployments: Vec<DeploymentOut>,
    pub plans: Vec<PlanOut>,
    pub subscribers: Vec<SubscriberOut>,
}

impl Output {
    /// Every finding, in the order the file shows them.
    pub fn findings(&self) -> Vec<Finding> {
        let mut all = self.findings.clone();
        for d in &self.deployments {
            all.extend(d.section.findings.iter().cloned());
            for (_, table) in &d.tables {
                all.extend(table.findings.iter().cloned());
            }
            for route in &d.routes {
                all.extend(route.findings.iter().cloned());
            }
        }
        for p in &self.plans {
            all.extend(p.section.findings.iter().cloned());
            for e in &p.entitlements {
                all.extend(e.findings.iter().cloned());
            }
        }
        for s in &self.subscribers {
            all.extend(s.section.findings.iter().cloned());
            for c in &s.clients {
                all.extend(c.findings.iter().cloned());
            }
        }
        all
    }
}

/// An inline table from `(key, value)` pairs, in order.
pub fn table(pairs: Vec<(&str, Value)>) -> Value {
    let mut t = InlineTable::new();
    for (key, value) in pairs {
        t.insert(key, value);
    }
    Value::InlineTable(t)
}

/// An inline array of strings.
pub fn strings<S: AsRef<str>>(items: &[S]) -> Value {
    Value::Array(items.iter().map(|s| s.as_ref()).collect::<Array>())
}

/// An inline array of values.
pub fn array(items: Vec<Value>) -> Value {
    let mut a = Array::new();
    for item in items {
        a.push(item);
    }
    Value::Array(a)
}

impl Section {
    /// The entries as one inline table (to check them against the config types).
    pub fn as_inline(&self) -> Value {
        let mut t = InlineTable::new();
        for (key, value) in &self.entries {
            t.insert(key.as_str(), value.clone());
        }
        Value::InlineTable(t)
    }
}

/// Reads `value` as the config type `T`, the way `portcullis check` would.
pub fn parse_as<T: serde::de::DeserializeOwned>(value: &Value) -> Result<T, String> {
    let text = format!("v = {value}");
    let table: toml::Table = toml::from_str(&text).map_err(|e| e.to_string())?;
    table
        .get("v")
        .cloned()
        .ok_or_else(|| "empty value".to_string())?
        .try_into::<T>()
        .map_err(|e| super::report::one_line(&e.to_string()))
}
