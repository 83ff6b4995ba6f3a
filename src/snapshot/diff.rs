//! What changed between two snapshots, for the reload audit line (and, later,
//! for `check` against a running gateway). Names only: never a token, never a
//! header value.

use super::{BackendSpec, RouteSpec, Snapshot};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// Most names listed per kind of change in one summary line.
const MAX_NAMES: usize = 5;

/// Added, removed and changed names of one kind of thing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// Compares `(name, fingerprint)` lists (hashed: 100,000 subscribers compare in milliseconds).
    fn between(old: &[(String, String)], new: &[(String, String)]) -> Changes {
        let mut changes = Changes::default();
        let old_map: HashMap<&str, &str> =
            old.iter().map(|(n, p)| (n.as_str(), p.as_str())).collect();
        let new_map: HashMap<&str, &str> =
            new.iter().map(|(n, p)| (n.as_str(), p.as_str())).collect();
        for (name, print) in new {
            match old_map.get(name.as_str()) {
                None => changes.added.push(name.clone()),
                Some(old_print) if old_print != print => changes.changed.push(name.clone()),
                Some(_) => {}
            }
        }
        for (name, _) in old {
            if !new_map.contains_key(name.as_str()) {
                changes.removed.push(name.clone());
            }
        }
        changes
    }
}

/// The changes a new snapshot brings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChangeSummary {
    pub deployments: Changes,
    pub routes: Changes,
    pub usage_plans: Changes,
    pub subscribers: Changes,
    /// `subscriber/client`; a rotated token shows as changed.
    pub clients: Changes,
    /// Limits, timeouts or pool settings changed.
    pub settings_changed: bool,
}

/// What a snapshot defines, by name, with a fingerprint of each thing's
/// settings: enough to compare two configs, safe to publish (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub deployments: Vec<(String, String)>,
    pub routes: Vec<(String, String)>,
    #[serde(default)]
    pub usage_plans: Vec<(String, String)>,
    #[serde(default)]
    pub subscribers: Vec<(String, String)>,
    #[serde(default)]
    pub clients: Vec<(String, String)>,
    pub settings: String,
}

impl Inventory {
    pub fn of(snapshot: &Snapshot) -> Inventory {
        Inventory {
            deployments: deployment_prints(snapshot),
            routes: route_prints(snapshot),
            usage_plans: snapshot
                .usage
                .plans
                .iter()
                .map(|p| (p.name.clone(), format!("{:?}", p.entitlements)))
                .collect(),
            subscribers: snapshot
                .usage
                .subscribers
                .iter()
                .map(|s| {
                    let plans: Vec<&str> = s
                        .grants
                        .iter()
                        .map(|g| snapshot.usage.plans[g.plan as usize].name.as_str())
                        .collect();
                    (s.name.clone(), plans.join(","))
                })
                .collect(),
            clients: snapshot.usage.client_prints(),
            settings: settings_print(snapshot),
        }
    }
}

impl ChangeSummary {
    pub fn between(old: &Snapshot, new: &Snapshot) -> ChangeSummary {
        ChangeSummary::between_inventories(old.inventory(), new.inventory())
    }

    pub fn between_inventories(old: &Inventory, new: &Inventory) -> ChangeSummary {
        ChangeSummary {
            deployments: Changes::between(&old.deployments, &new.deployments),
            routes: Changes::between(&old.routes, &new.routes),
            usage_plans: Changes::between(&old.usage_plans, &new.usage_plans),
            subscribers: Changes::between(&old.subscribers, &new.subscribers),
            clients: Changes::between(&old.clients, &new.clients),
            settings_changed: old.settings != new.settings,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.deployments.is_empty()
            && self.routes.is_empty()
            && self.usage_plans.is_empty()
            && self.subscribers.is_empty()
            && self.clients.is_empty()
            && !self.settings_changed
    }
}

impl fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "no changes");
        }
        let mut first = true;
        for (kind, changes) in [
            ("deployments", &self.deployments),
            ("routes", &self.routes),
            ("usage_plans", &self.usage_plans),
            ("subscribers", &self.subscribers),
            ("clients", &self.clients),
        ] {
            if changes.is_empty() {
                continue;
            }
            if !first {
                write!(f, "; ")?;
            }
            first = false;
            write!(f, "{kind}")?;
            for (sign, names) in [
                ("+", &changes.added),
                ("-", &changes.removed),
                ("~", &changes.changed),
            ] {
                if names.is_empty() {
                    continue;
                }
                write!(f, " {sign}{} [", names.len())?;
                for (i, name) in names.iter().take(MAX_NAMES).enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{name}")?;
                }
                if names.len() > MAX_NAMES {
                    write!(f, ", ...")?;
                }
                write!(f, "]")?;
            }
        }
        if self.settings_changed {
            if !first {
                write!(f, "; ")?;
            }
            write!(f, "limits/timeouts/pool settings changed")?;
        }
        Ok(())
    }
}

fn deployment_prints(snapshot: &Snapshot) -> Vec<(String, String)> {
    snapshot
        .deployments
        .iter()
        .map(|d| {
            let listener = &snapshot.listeners[d.listener].name;
            let limit = d.policies.rate_limit.as_ref().map(|l| {
                let key = match l.state {
                    crate::policy::usage::LimitState::Total(_) => "total",
                    crate::policy::usage::LimitState::ClientIp(_) => "client_ip",
                };
                (l.params, key)
            });
            (
                d.name.clone(),
                format!(
                    "{listener} {} {:?} {:?} {limit:?}",
                    d.path_prefix,
                    d.policies.network.as_ref().map(|n| format!("{:?}", n.0)),
                    d.policies.usage
                ),
            )
        })
        .collect()
}

/// Routes are named `deployment METHODS pattern`; their fingerprint is the back end.
fn route_prints(snapshot: &Snapshot) -> Vec<(String, String)> {
    snapshot
        .routes
        .iter()
        .map(|r| (route_name(snapshot, r), backend_print(&r.backend)))
        .collect()
}

/// A route's stable name: `deployment METHODS pattern`.
pub fn route_name(snapshot: &Snapshot, route: &RouteSpec) -> String {
    let deployment = &snapshot.deployments[route.deployment].name;
    let methods = if route.methods.is_empty() {
        "*".to_string()
    } else {
        route.methods.join(",")
    };
    format!("{deployment} {methods} {}", route.pattern)
}

/// A back end's fingerprint: where it goes (`scheme://host:port` or the stock
/// status) and a short digest of the rest. `/config` publishes it, so the rest
/// (URL path and query, stock header values and body) must not appear as
/// text: an API key in a back-end URL's query is common.
fn backend_print(backend: &BackendSpec) -> String {
    let (target, details) = match backend {
        BackendSpec::Http(h) => (
            h.pool_key.to_string(),
            format!(
                "{:?} {:?} {:?} {:?} {:?} {:?}",
                h.path,
                h.query,
                h.append_remainder,
                h.connect_timeout,
                h.read_timeout,
                h.send_timeout
            ),
        ),
        BackendSpec::Stock(s) => (
            format!("stock {}", s.status),
            format!("{:?} {:?}", s.head, s.body),
        ),
    };
    let digest = crate::config::digest::sha256_hex(&details);
    format!("{target} #{}", &digest[..16])
}

fn settings_print(s: &Snapshot) -> String {
    format!(
        "{:?} {} {:?} {:?}",
        s.head_limits, s.max_body_bytes, s.timeouts, s.pool
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn snapshot(routes: &str) -> Snapshot {
        let text = format!(
            "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n[[deployments]]\nname = \"d\"\nlistener = \"l\"\n{routes}"
        );
        let config = crate::config::parse_str(&text, Path::new("t.toml")).unwrap();
        Snapshot::compile(&config, &text, Path::new("t.toml")).unwrap()
    }

    const A: &str =
        "[[deployments.routes]]\npath = \"/a\"\nbackend = { type = \"stock\", status = 200 }\n";
    const B: &str =
        "[[deployments.routes]]\npath = \"/b\"\nbackend = { type = \"stock\", status = 200 }\n";
    const A2: &str =
        "[[deployments.routes]]\npath = \"/a\"\nbackend = { type = \"stock\", status = 201 }\n";

    // An added, a removed and a changed route are each named.
    #[test]
    fn routes_added_removed_changed() {
        let summary = ChangeSummary::between(&snapshot(&format!("{A}{B}")), &snapshot(A2));
        assert_eq!(summary.to_string(), "routes -1 [d * /b] ~1 [d * /a]");
    }

    // A back end's fingerprint names its target but not its URL query or stock headers and body.
    #[test]
    fn backend_prints_hide_query_and_stock_content() {
        let routes = "[[deployments.routes]]\npath = \"/u\"\nbackend = { type = \"http\", url = \"http://127.0.0.1:9/x?api_key=QSECRET\" }\n[[deployments.routes]]\npath = \"/s\"\nbackend = { type = \"stock\", status = 200, headers = { \"X-Key\" = \"HSECRET\" }, body = \"BSECRET\" }\n";
        let prints = format!("{:?}", snapshot(routes).inventory().routes);
        assert!(
            prints.contains("http://127.0.0.1:9")
                && prints.contains("stock 200")
                && !prints.contains("SECRET"),
            "{prints}"
        );
    }

    // Identical configs have no changes.
    #[test]
    fn identical_is_empty() {
        assert!(ChangeSummary::between(&snapshot(A), &snapshot(A)).is_empty());
    }
}
