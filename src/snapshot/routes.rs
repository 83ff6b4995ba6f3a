//! Compiling deployments' routes into one route table per listener, with the
//! per-path method dispatch that decides between a route, 405 and `Allow`.

use super::backend::BackendSpec;
use super::dynamic::compile_backend;
use super::DeploymentSpec;
use crate::config::Config;
use crate::http::fields::is_token;
use crate::route::table::{param_names, RouteTable, RouteTableBuilder};

/// A compiled route.
#[derive(Debug)]
pub struct RouteSpec {
    pub deployment: usize,
    /// The full path pattern (deployment prefix + route path).
    pub pattern: String,
    /// Allowed methods; empty means every method.
    pub methods: Vec<Box<str>>,
    pub backend: BackendSpec,
    /// Index of the route's (first) back end among all the snapshot's back
    /// ends: a dynamic back end's case `i` is `backend_slot + i`. Workers key
    /// their balancing state by it.
    pub backend_slot: usize,
    /// Counters, shared with the same route in later snapshots.
    pub stats: std::sync::Arc<crate::telemetry::counters::RouteStats>,
    /// The route's access-log fields, rendered once:
    /// `"deployment":...,"route":...,"backend":...`.
    pub log_fields: Box<[u8]>,
    /// Authorization, CORS, header transformations.
    pub policies: crate::policy::RoutePolicies,
}

/// Methods that echo the request back (TRACE, and Microsoft's TRACK): with
/// credentials in it, a page could read them (cross-site tracing). A route
/// takes them only when its `methods` list names them.
pub const ECHO_METHODS: [&str; 2] = ["TRACE", "TRACK"];

/// What the `Allow` field names for a route without a `methods` list (which
/// takes any method token but the [`ECHO_METHODS`]).
pub const UNLISTED_ALLOW: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl RouteSpec {
    /// A route with a `methods` list takes exactly those; one without takes
    /// every method but TRACE and TRACK.
    pub fn allows(&self, method: &str) -> bool {
        if self.methods.is_empty() {
            !ECHO_METHODS.contains(&method)
        } else {
            self.methods.iter().any(|m| &**m == method)
        }
    }
}

/// What a path pattern leads to: its routes, chosen by method.
#[derive(Debug, Default)]
pub struct PathEntry {
    pub routes: Vec<usize>,
    /// The `Allow` field value for a 405 on this path.
    pub allow: Box<str>,
}

/// Result of choosing a route on a matched path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodDispatch {
    Route(usize),
    NotAllowed,
}

impl PathEntry {
    /// The route on this path that allows `method`.
    pub fn dispatch(&self, routes: &[RouteSpec], method: &str) -> MethodDispatch {
        self.routes
            .iter()
            .copied()
            .find(|&r| routes[r].allows(method))
            .map_or(MethodDispatch::NotAllowed, MethodDispatch::Route)
    }
}

type CompileError = (String, String);

pub(super) fn compile_routes(
    config: &Config,
    deployments: &[DeploymentSpec],
    listener_count: usize,
    warnings: &mut Vec<String>,
) -> Result<(Vec<RouteSpec>, Vec<RouteTable<PathEntry>>), CompileError> {
    let mut routes: Vec<RouteSpec> = Vec::new();
    let mut next_backend_slot = 0;
    // (listener, pattern) -> PathEntry, in insertion order.
    let mut entries: Vec<(usize, String, PathEntry, String)> = Vec::new();
    for (d, deployment) in config.deployments.iter().enumerate() {
        for (r, route) in deployment.routes.iter().enumerate() {
            let key = |k: &str| format!("deployments[{d}].routes[{r}].{k}");
            if !route.path.starts_with('/') {
                return Err((
                    key("path"),
                    format!("route path `{}` must start with `/`", route.path),
                ));
            }
            let pattern = format!("{}{}", deployments[d].path_prefix, route.path);
            let params = param_names(&pattern).map_err(|e| (key("path"), e.to_string()))?;
            let catch_all = (pattern.ends_with("*}") || pattern.ends_with("/*"))
                .then(|| params.last())
                .flatten();
            let mut methods: Vec<Box<str>> = Vec::new();
            for m in &route.methods {
                if !is_token(m.as_bytes()) || m.bytes().any(|b| b.is_ascii_lowercase()) {
                    return Err((
                        key("methods"),
                        format!("`{m}` is not an upper-case HTTP method token"),
                    ));
                }
                if !methods.iter().any(|x| **x == **m) {
                    methods.push(m.as_str().into());
                }
            }
            let backend = compile_backend(
                &route.backend,
                &params,
                catch_all.map(String::as_str),
                warnings,
            )
            .map_err(|(k, m)| (key(&format!("backend.{k}")), m))?;
            let policies =
                crate::policy::compile::route_policies(route, &deployments[d].policies, &params)
                    .map_err(|(k, m)| (key(&k), m))?;
            let index = routes.len();
            let log_fields = route_log_fields(&deployments[d].name, &pattern, &backend);
            let backend_slot = next_backend_slot;
            next_backend_slot += backend.each().len();
            let spec = RouteSpec {
                deployment: d,
                pattern: pattern.clone(),
                methods,
                backend,
                backend_slot,
                stats: Default::default(),
                log_fields,
                policies,
            };
            let listener = deployments[d].listener;
            match entries
                .iter_mut()
                .find(|(l, p, _, _)| *l == listener && *p == pattern)
            {
                Some((_, _, entry, first_key)) => {
                    let overlaps = entry
                        .routes
                        .iter()
                        .any(|&o| methods_overlap(&routes[o], &spec));
                    if overlaps {
                        return Err((
                            key("path"),
                            format!(
                                "route `{pattern}` repeats methods of the route at `{first_key}`"
                            ),
                        ));
                    }
                    entry.routes.push(index);
                }
                None => entries.push((
                    listener,
                    pattern,
                    PathEntry {
                        routes: vec![index],
                        allow: "".into(),
                    },
                    key("path"),
                )),
            }
            routes.push(spec);
        }
    }
    let mut builders: Vec<RouteTableBuilder<PathEntry>> = (0..listener_count)
        .map(|_| RouteTableBuilder::new())
        .collect();
    for (listener, pattern, mut entry, first_key) in entries {
        entry.allow = allow_value(&routes, &entry.routes).into();
        builders[listener]
            .insert(&pattern, entry)
            .map_err(|e| (first_key, e.to_string()))?;
    }
    Ok((
        routes,
        builders.into_iter().map(RouteTableBuilder::build).collect(),
    ))
}

fn route_log_fields(deployment: &str, pattern: &str, backend: &BackendSpec) -> Box<[u8]> {
    use crate::telemetry::format::write_json_str;
    let mut out = Vec::new();
    out.extend_from_slice(b"\"deployment\":");
    write_json_str(&mut out, deployment.as_bytes());
    out.extend_from_slice(b",\"route\":");
    write_json_str(&mut out, pattern.as_bytes());
    out.extend_from_slice(b",\"backend\":");
    match backend {
        BackendSpec::Http(h) => write_json_str(&mut out, h.label().as_bytes()),
        BackendSpec::Stock(_) => out.extend_from_slice(b"\"stock\""),
        BackendSpec::Dynamic(_) => out.extend_from_slice(b"\"dynamic\""),
    }
    out.into_boxed_slice()
}

/// Whether some method would reach both routes (a route without a methods
/// list and one that lists only TRACE or TRACK do not overlap).
fn methods_overlap(a: &RouteSpec, b: &RouteSpec) -> bool {
    match (a.methods.is_empty(), b.methods.is_empty()) {
        (true, true) => true,
        (true, false) => b.methods.iter().any(|m| a.allows(m)),
        (false, _) => a.methods.iter().any(|m| b.allows(m)),
    }
}

/// The methods allowed on a path, as an `Allow` value (HEAD implied by GET is
/// not added: the gateway routes exactly what is configured). A route without
/// a `methods` list contributes [`UNLISTED_ALLOW`].
fn allow_value(routes: &[RouteSpec], on_path: &[usize]) -> String {
    let mut methods: Vec<&str> = Vec::new();
    if on_path.iter().any(|&r| routes[r].methods.is_empty()) {
        methods.extend(UNLISTED_ALLOW);
    }
    for &r in on_path {
        for m in &routes[r].methods {
            if !methods.contains(&&**m) {
                methods.push(m);
            }
        }
    }
    methods.join(", ")
}

#[cfg(test)]
mod tests {
    use super::super::Snapshot;
    use std::path::Path;

    fn compile(routes: &str) -> Snapshot {
        let text = format!(
            "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n[[deployments]]\nname = \"d\"\nlistener = \"l\"\n{routes}"
        );
        let config = crate::config::parse_str(&text, Path::new("t.toml")).unwrap();
        Snapshot::compile(&config, &text, Path::new("t.toml")).unwrap()
    }

    // Rule: a route without a methods list takes any method but TRACE and TRACK; one that lists TRACE takes it.
    #[test]
    fn echo_methods_only_when_listed() {
        let s = compile("[[deployments.routes]]\npath = \"/a\"\nbackend = { type = \"stock\", status = 200 }\n[[deployments.routes]]\npath = \"/t\"\nmethods = [\"TRACE\"]\nbackend = { type = \"stock\", status = 200 }\n");
        assert_eq!(
            ["GET", "PURGE", "TRACE", "TRACK"].map(|m| s.routes[0].allows(m)),
            [true, true, false, false]
        );
        assert!(s.routes[1].allows("TRACE"));
    }

    // Rule: a path with a route without a methods list allows the usual methods, then the listed ones.
    #[test]
    fn allow_of_unlisted_route_names_usual_methods() {
        let s = compile("[[deployments.routes]]\npath = \"/a\"\nmethods = [\"TRACE\"]\nbackend = { type = \"stock\", status = 200 }\n[[deployments.routes]]\npath = \"/a\"\nmethods = []\nbackend = { type = \"stock\", status = 200 }\n");
        let entry = s.tables[0].lookup("/a").map(|f| f.value.allow.to_string());
        assert_eq!(
            entry.as_deref(),
            Some("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE")
        );
    }
}
