//! Reading OCI's JSON with a JSON path at every step: the CLI's envelopes
//! (`{"data": ...}`, `{"data": {"items": [...]}}`), and [`Obj`], an object
//! whose members are taken one by one so that whatever nobody took is reported
//! instead of dropped silently.
//!
//! Members are named as OCI's API writes them (`pathPrefix`); the OCI CLI's
//! own output spells them in kebab case (`path-prefix`), which is read as
//! the same member. Wrong shapes (a string where an object belongs, a missing
//! required member) are [`ImportError`]s naming the path; nothing here panics
//! on input.

use super::report::{Finding, Loc};
use serde_json::{Map, Value};
use std::fmt;

/// Members every OCI resource carries that describe it (compartment, times,
/// tags, locks) and have no effect on requests: taken without a report line.
pub const RESOURCE_METADATA: [&str; 8] = [
    "compartmentId",
    "timeCreated",
    "timeUpdated",
    "lifecycleDetails",
    "freeformTags",
    "definedTags",
    "systemTags",
    "locks",
];

/// Input the importer cannot read: unreadable files, text that is not JSON,
/// JSON of the wrong shape, unknown policy or back-end types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub loc: Option<Loc>,
    pub message: String,
}

impl ImportError {
    pub fn at(loc: &Loc, message: impl Into<String>) -> ImportError {
        ImportError {
            loc: Some(loc.clone()),
            message: message.into(),
        }
    }

    pub fn plain(message: impl Into<String>) -> ImportError {
        ImportError {
            loc: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(loc) => write!(f, "{}: {}: {}", loc.file(), loc.path(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ImportError {}

pub type Result<T> = std::result::Result<T, ImportError>;

/// Parses `text` read from `file`.
pub fn parse(file: &str, text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| ImportError::at(&Loc::root(file), format!("not JSON: {e}")))
}

/// What a JSON value is, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Null, `[]`, and objects with only such members: present, but saying
/// nothing (OCI's exports write every unset member as null).
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        _ => false,
    }
}

/// Members the CLI writes beside `data`.
const ENVELOPE_MEMBERS: [&str; 4] = [
    "etag",
    "opc-next-page",
    "opc-request-id",
    "opc-work-request-id",
];

/// The objects a file holds: one object, the CLI's `{"data": object}`, a
/// collection `{"items": [...]}` (also inside `data`) or a JSON array.
pub fn objects<'a>(
    root: &'a Value,
    loc: &Loc,
    findings: &mut Vec<Finding>,
) -> Result<Vec<(Loc, &'a Value)>> {
    let (mut value, mut here) = (root, loc.clone());
    if let Value::Object(map) = root {
        let enveloped = map.contains_key("data")
            && map
                .keys()
                .all(|k| k == "data" || ENVELOPE_MEMBERS.contains(&k.as_str()));
        if enveloped {
            if map.get("opc-next-page").is_some_and(|v| !is_empty(v)) {
                findings.push(Finding::new(
                    loc.key("opc-next-page"),
                    "the list has more pages in OCI that this file lacks (export with `--all`)",
                ));
            }
            here = loc.key("data");
            value = &map["data"];
        }
    }
    let items = match value {
        Value::Object(map) if map.len() == 1 && map.get("items").is_some_and(Value::is_array) => {
            here = here.key("items");
            map.get("items")
        }
        Value::Array(_) => Some(value),
        Value::Object(_) => return Ok(vec![(here, value)]),
        other => {
            return Err(ImportError::at(
                &here,
                format!("expected a JSON object, found {}", kind(other)),
            ))
        }
    };
    let list = items
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    Ok(list
        .iter()
        .enumerate()
        .map(|(i, v)| (here.index(i), v))
        .collect())
}

/// A JSON object being translated: members are taken one at a time; what is
/// left at [`Obj::finish`] becomes a finding.
pub struct Obj<'a> {
    loc: Loc,
    map: &'a Map<String, Value>,
    taken: Vec<&'a str>,
}

impl<'a> Obj<'a> {
    /// `value` read as an object; `what` names it in the error otherwise.
    pub fn new(value: &'a Value, loc: Loc, what: &str) -> Result<Obj<'a>> {
        match value {
            Value::Object(map) => Ok(Obj {
                loc,
                map,
                taken: Vec::new(),
            }),
            other => Err(ImportError::at(
                &loc,
                format!("expected {what} (a JSON object), found {}", kind(other)),
            )),
        }
    }

    pub fn loc(&self) -> &Loc {
        &self.loc
    }

    /// Member `key` as the file spells it: as given, or in kebab case.
    fn entry(&self, key: &str) -> Option<(&'a String, &'a Value)> {
        self.map
            .get_key_value(key)
            .or_else(|| self.map.get_key_value(&kebab(key)))
    }

    /// The location of member `key`.
    pub fn at(&self, key: &str) -> Loc {
        match self.entry(key) {
            Some((name, _)) => self.loc.key(name),
            None => self.loc.key(key),
        }
    }

    /// Whether `key` is present and not null.
    pub fn has(&self, key: &str) -> bool {
        self.entry(key).is_some_and(|(_, v)| !v.is_null())
    }

    /// Takes member `key`; null counts as absent.
    pub fn raw(&mut self, key: &str) -> Option<&'a Value> {
        let (name, value) = self.entry(key)?;
        self.taken.push(name.as_str());
        (!value.is_null()).then_some(value)
    }

    fn typed<T>(
        &mut self,
        key: &str,
        what: &str,
        read: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>> {
        let loc = self.at(key);
        match self.raw(key) {
            None => Ok(None),
            Some(value) => read(value).map(Some).ok_or_else(|| {
                ImportError::at(&loc, format!("expected {what}, found {}", kind(value)))
            }),
        }
    }

    pub fn str_opt(&mut self, key: &str) -> Result<Option<&'a str>> {
        self.typed(key, "a string", Value::as_str)
    }

    /// A member OCI requires.
    pub fn str_req(&mut self, key: &str) -> Result<&'a str> {
        let loc = self.at(key);
        self.str_opt(key)?
            .ok_or_else(|| ImportError::at(&loc, "missing (OCI requires it)"))
    }

    pub fn bool_opt(&mut self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "true or false", Value::as_bool)
    }

    pub fn num_opt(&mut self, key: &str) -> Result<Option<f64>> {
        self.typed(key, "a number", |v| v.as_f64().filter(|n| n.is_finite()))
    }

    /// A whole number (`10` or `10.0`).
    pub fn int_opt(&mut self, key: &str) -> Result<Option<i64>> {
        self.typed(key, "a whole number", |v| {
            v.as_i64().or_else(|| {
                v.as_f64()
                    .filter(|n| n.fract() == 0.0 && n.abs() < 9.0e15)
                    .map(|n| n as i64)
            })
        })
    }

    pub fn int_req(&mut self, key: &str) -> Result<i64> {
        let loc = self.at(key);
        self.int_opt(key)?
            .ok_or_else(|| ImportError::at(&loc, "missing (OCI requires it)"))
    }

    /// A member that must be an object, if present.
    pub fn obj_opt(&mut self, key: &str, what: &str) -> Result<Option<Obj<'a>>> {
        let loc = self.at(key);
        self.raw(key).map(|v| Obj::new(v, loc, what)).transpose()
    }

    pub fn obj_req(&mut self, key: &str, what: &str) -> Result<Obj<'a>> {
        let loc = self.at(key);
        self.obj_opt(key, what)?
            .ok_or_else(|| ImportError::at(&loc, format!("missing {what} (OCI requires it)")))
    }

    /// The elements of an array member with their locations (absent: none).
    pub fn array(&mut self, key: &str) -> Result<Vec<(Loc, &'a Value)>> {
        let loc = self.at(key);
        let list = self.typed(key, "an array", Value::as_array)?;
        Ok(list
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .enumerate()
            .map(|(i, v)| (loc.index(i), v))
            .collect())
    }

    /// An array of strings (absent: empty).
    pub fn strings(&mut self, key: &str) -> Result<Vec<String>> {
        self.array(key)?
            .into_iter()
            .map(|(loc, v)| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ImportError::at(&loc, format!("expected a string, found {}", kind(v)))
                })
            })
            .collect()
    }

    /// Takes `key` and, when it says something, reports it with `reason`.
    /// Returns whether it did.
    pub fn not_carried(&mut self, key: &str, reason: &str, findings: &mut Vec<Finding>) -> bool {
        let loc = self.at(key);
        match self.raw(key) {
            Some(value) if !is_empty(value) => {
                findings.push(Finding::new(loc, reason));
                true
            }
            _ => false,
        }
    }

    /// Reports a `lifecycleState` other than `ACTIVE`: the resource is
    /// imported as if it were active. `what` names it ("the usage plan").
    pub fn report_inactive(&mut self, what: &str, findings: &mut Vec<Finding>) -> Result<()> {
        let state_loc = self.at("lifecycleState");
        if let Some(state) = self.str_opt("lifecycleState")? {
            if state != "ACTIVE" {
                findings.push(Finding::new(
                    state_loc,
                    format!("{what} is {state} in OCI; imported as if it were active"),
                ));
            }
        }
        Ok(())
    }

    /// Takes members that describe the OCI resource (times, tags, compartment)
    /// and have no effect on requests.
    pub fn metadata(&mut self, keys: &[&str]) {
        for key in keys {
            self.raw(key);
        }
    }

    /// Reports every member nobody took: it is not part of OCI's `model` as
    /// this importer knows it.
    pub fn finish(self, model: &str, findings: &mut Vec<Finding>) {
        for (key, value) in self.map {
            if !self.taken.contains(&key.as_str()) && !is_empty(value) {
                findings.push(Finding::new(
                    self.loc.key(key),
                    format!(
                        "not a field of OCI's {model} that this importer knows; not carried over"
                    ),
                ));
            }
        }
    }
}

/// `pathPrefix` → `path-prefix`, `key_ops` → `key-ops`: the OCI CLI's spelling.
fn kebab(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else if c == '_' {
            out.push('-');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn locs(value: &Value) -> Vec<String> {
        let mut findings = Vec::new();
        objects(value, &Loc::root("f"), &mut findings)
            .unwrap()
            .into_iter()
            .map(|(loc, _)| loc.path().to_string())
            .collect()
    }

    // A bare object, the CLI's data envelope and item lists all give their objects.
    #[test]
    fn envelopes_unwrap() {
        assert_eq!(
            [
                locs(&json!({"id": "a"})),
                locs(&json!({"data": {"id": "a"}, "etag": "x"})),
                locs(&json!({"data": {"items": [{"id": "a"}, {"id": "b"}]}})),
            ],
            [
                vec!["$".to_string()],
                vec!["$.data".to_string()],
                vec!["$.data.items[0]".to_string(), "$.data.items[1]".to_string()],
            ]
        );
    }

    // The OCI CLI's kebab-case members are the API's camel-case ones.
    #[test]
    fn cli_spelling_is_read() {
        let value = json!({"path-prefix": "/oic", "is-ssl-verify-disabled": true});
        let mut obj = Obj::new(&value, Loc::root("f"), "x").unwrap();
        assert_eq!(
            (
                obj.str_opt("pathPrefix").unwrap(),
                obj.bool_opt("isSslVerifyDisabled").unwrap(),
                obj.at("pathPrefix").path().to_string()
            ),
            (Some("/oic"), Some(true), "$.path-prefix".to_string())
        );
    }

    // A member of the wrong type is an error naming its path.
    #[test]
    fn wrong_types_name_the_path() {
        let value = json!({"routes": "no"});
        let mut obj = Obj::new(&value, Loc::root("f"), "a specification").unwrap();
        let error = obj.array("routes").unwrap_err();
        assert_eq!(
            error.to_string(),
            "f: $.routes: expected an array, found a string"
        );
    }

    // Members nobody took are reported; empty ones say nothing.
    #[test]
    fn leftovers_are_reported() {
        let value = json!({"a": 1, "b": 2, "c": null, "d": []});
        let mut obj = Obj::new(&value, Loc::root("f"), "x").unwrap();
        obj.raw("a");
        let mut findings = Vec::new();
        obj.finish("Thing", &mut findings);
        assert_eq!(
            findings.iter().map(|f| f.loc.path()).collect::<Vec<_>>(),
            ["$.b"]
        );
    }
}
