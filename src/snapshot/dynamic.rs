//! Compiling a route's back end of any type, and the `dynamic` type: a
//! selector over the request (`route::selector`) and cases, each an `http`
//! or `stock` back end, found per request by one hash probe on exact keys,
//! then the wildcard patterns in order, then the default. A request that
//! matches no case and no default is answered 404 (a default case with a
//! `stock` back end gives any other answer).

use super::backend::{compile_http, typed, BackendSpec, TypedBackend};
use super::stock::compile_stock;
use crate::config::{Backend, BackendKind};
use crate::route::selector::{parse_source, Cases, Source};

/// Most cases a dynamic back end may have (case indices are `u16`).
pub const MAX_CASES: usize = 1024;

/// A compiled `dynamic` back end.
#[derive(Debug)]
pub struct DynamicSpec {
    pub selector: Source,
    /// As written, for `/config` and logs.
    pub selector_text: Box<str>,
    pub cases: Cases,
    /// Case `i`'s back end (never `Dynamic`).
    pub backends: Vec<BackendSpec>,
    /// Case `i`'s name.
    pub names: Vec<Box<str>>,
}

impl BackendSpec {
    /// The back end that serves case `case` (`None`: this back end itself).
    pub fn case(&self, case: Option<u16>) -> Option<&BackendSpec> {
        match (self, case) {
            (BackendSpec::Dynamic(dynamic), Some(case)) => dynamic.backends.get(case as usize),
            (BackendSpec::Dynamic(_), None) => None,
            (other, _) => Some(other),
        }
    }

    /// Every back end a request may reach: itself, or each case's.
    pub fn each_mut(&mut self) -> Vec<&mut BackendSpec> {
        match self {
            BackendSpec::Dynamic(dynamic) => dynamic.backends.iter_mut().collect(),
            other => vec![other],
        }
    }

    /// Every back end a request may reach, by reference.
    pub fn each(&self) -> Vec<&BackendSpec> {
        match self {
            BackendSpec::Dynamic(dynamic) => dynamic.backends.iter().collect(),
            other => vec![other],
        }
    }
}

/// Compiles a route's back end; errors are (key below `backend`, message).
pub fn compile_backend(
    backend: &Backend,
    route_params: &[String],
    catch_all: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<BackendSpec, (String, String)> {
    let owned = |(k, m): (&str, String)| (k.to_string(), m);
    match typed(backend).map_err(owned)? {
        TypedBackend::Http(http) => Ok(BackendSpec::Http(
            compile_http(&http, route_params, catch_all, warnings).map_err(owned)?,
        )),
        TypedBackend::Stock(stock) => Ok(BackendSpec::Stock(compile_stock(&stock).map_err(owned)?)),
        TypedBackend::Dynamic => compile_dynamic(backend, route_params, catch_all, warnings)
            .map(|d| BackendSpec::Dynamic(Box::new(d))),
    }
}

fn compile_dynamic(
    backend: &Backend,
    route_params: &[String],
    catch_all: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<DynamicSpec, (String, String)> {
    let selector_text = backend.selector.as_deref().ok_or((
        "selector".to_string(),
        "a `dynamic` back end needs a `selector`, e.g. \"request.headers[X-Region]\"".to_string(),
    ))?;
    let selector =
        parse_source(selector_text, route_params).map_err(|m| ("selector".to_string(), m))?;
    let configured = backend.cases.as_deref().unwrap_or_default();
    if configured.is_empty() {
        return Err((
            "cases".to_string(),
            "a `dynamic` back end needs at least one case".to_string(),
        ));
    }
    if configured.len() > MAX_CASES {
        return Err((
            "cases".to_string(),
            format!("at most {MAX_CASES} cases, found {}", configured.len()),
        ));
    }
    let mut spec = DynamicSpec {
        selector,
        selector_text: selector_text.into(),
        cases: Cases::default(),
        backends: Vec::with_capacity(configured.len()),
        names: Vec::with_capacity(configured.len()),
    };
    for (i, case) in configured.iter().enumerate() {
        let at = |key: &str| format!("cases[{i}].{key}");
        let index = i as u16;
        if case.keys.is_empty() && !case.default {
            return Err((
                at("keys"),
                "a case needs `keys`, or `default = true`".to_string(),
            ));
        }
        for key in &case.keys {
            if key.is_empty() {
                return Err((at("keys"), "a key must not be empty".to_string()));
            }
            spec.cases.add_key(key, index).map_err(|earlier| {
                (
                    at("keys"),
                    format!("key `{key}` is already case {earlier}'s"),
                )
            })?;
        }
        if case.default {
            spec.cases.set_default(index).map_err(|earlier| {
                (
                    at("default"),
                    format!("case {earlier} is already the default"),
                )
            })?;
        }
        if case.backend.kind == BackendKind::Dynamic {
            return Err((
                at("backend.type"),
                "a case's back end is `http` or `stock`, not another `dynamic`".to_string(),
            ));
        }
        let compiled = compile_backend(&case.backend, route_params, catch_all, warnings)
            .map_err(|(k, m)| (at(&format!("backend.{k}")), m))?;
        let name = match &case.name {
            Some(name) if name.is_empty() || name.bytes().any(|b| b.is_ascii_control()) => {
                return Err((at("name"), "a case name must be printable text".to_string()))
            }
            Some(name) => name.as_str().into(),
            None => format!("case-{i}").into(),
        };
        if spec.names.contains(&name) {
            return Err((at("name"), format!("case name `{name}` is used twice")));
        }
        spec.backends.push(compiled);
        spec.names.push(name);
    }
    Ok(spec)
}
