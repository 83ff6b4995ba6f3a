//! What changed between two snapshots, for the reload audit line and for
//! `check --admin`: compares two [`Inventory`]s kind by kind. Every setting
//! that takes effect on a reload is in the inventory, so every effective
//! change is named: settings by key (`limits.max_body_bytes`, `admin`),
//! listeners and deployments by name with the keys that changed
//! (`public (allow, deny)`), routes, usage plans, subscribers, clients and
//! referenced files by name, and (between running snapshots only) back ends
//! whose host name now resolves to other addresses. Names only: never a
//! token, never a header value.

use super::inventory::{Inventory, Settings};
use super::{BackendSpec, Snapshot};
use serde::Serialize;
use serde_json::Value;
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

    /// Compares two lists of entries by name (hashed: 100,000 subscribers
    /// compare in milliseconds). With `keys`, a changed entry is named with
    /// the keys whose values differ: `public (allow, deny)`.
    fn between<T: PartialEq + Serialize>(
        old: &[T],
        new: &[T],
        name: impl Fn(&T) -> &str,
        keys: bool,
    ) -> Changes {
        let mut changes = Changes::default();
        let old_map: HashMap<&str, &T> = old.iter().map(|e| (name(e), e)).collect();
        let new_map: HashMap<&str, &T> = new.iter().map(|e| (name(e), e)).collect();
        for entry in new {
            match old_map.get(name(entry)) {
                None => changes.added.push(name(entry).to_string()),
                Some(before) if *before != entry => {
                    let differing = if keys {
                        changed_keys(*before, entry)
                    } else {
                        Vec::new()
                    };
                    changes.changed.push(if differing.is_empty() {
                        name(entry).to_string()
                    } else {
                        format!("{} ({})", name(entry), differing.join(", "))
                    });
                }
                Some(_) => {}
            }
        }
        for entry in old {
            if !new_map.contains_key(name(entry)) {
                changes.removed.push(name(entry).to_string());
            }
        }
        changes
    }
}

/// The changes a new snapshot brings.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChangeSummary {
    /// Top-level settings by key (`limits.max_head_bytes`, `timeouts.head`,
    /// `admin`, `access_log`, ...).
    pub settings: Changes,
    /// Listeners, a changed one with its changed keys (`allow`, `tls`, ...).
    pub listeners: Changes,
    /// Deployments, a changed one with its changed keys.
    pub deployments: Changes,
    pub routes: Changes,
    pub usage_plans: Changes,
    pub subscribers: Changes,
    /// `subscriber/client`; a rotated token shows as changed.
    pub clients: Changes,
    /// Files a reload reads besides the config (CA bundles, key files).
    pub files: Changes,
    /// Back-end `host:port`s that resolve to other addresses (reloads only:
    /// `check` resolves nothing).
    pub backend_addresses: Changes,
}

impl ChangeSummary {
    /// Between two compiled snapshots, resolved back-end addresses included.
    pub fn between(old: &Snapshot, new: &Snapshot) -> ChangeSummary {
        let mut summary = ChangeSummary::between_inventories(old.inventory(), new.inventory());
        summary.backend_addresses = address_changes(old, new);
        summary
    }

    pub fn between_inventories(old: &Inventory, new: &Inventory) -> ChangeSummary {
        ChangeSummary {
            settings: settings_changes(&old.settings, &new.settings),
            listeners: Changes::between(&old.listeners, &new.listeners, |l| l.name.as_str(), true),
            deployments: Changes::between(
                &old.deployments,
                &new.deployments,
                |d| d.name.as_str(),
                true,
            ),
            routes: Changes::between(&old.routes, &new.routes, |r| r.name.as_str(), false),
            usage_plans: Changes::between(
                &old.usage_plans,
                &new.usage_plans,
                |p| p.name.as_str(),
                false,
            ),
            subscribers: Changes::between(
                &old.subscribers,
                &new.subscribers,
                |s| s.name.as_str(),
                false,
            ),
            clients: Changes::between(&old.clients, &new.clients, |c| c.name.as_str(), false),
            files: Changes::between(&old.files, &new.files, |f| f.path.as_str(), false),
            backend_addresses: Changes::default(),
        }
    }

    /// Each kind with its name in the summary line, in order.
    fn kinds(&self) -> [(&'static str, &Changes); 9] {
        [
            ("settings", &self.settings),
            ("listeners", &self.listeners),
            ("deployments", &self.deployments),
            ("routes", &self.routes),
            ("usage_plans", &self.usage_plans),
            ("subscribers", &self.subscribers),
            ("clients", &self.clients),
            ("files", &self.files),
            ("backend_addresses", &self.backend_addresses),
        ]
    }

    pub fn is_empty(&self) -> bool {
        self.kinds().iter().all(|(_, changes)| changes.is_empty())
    }
}

impl fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "no effective change");
        }
        let mut first = true;
        for (kind, changes) in self.kinds() {
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
        Ok(())
    }
}

/// The keys of two objects whose values differ (empty for non-objects).
fn changed_keys<T: Serialize>(old: &T, new: &T) -> Vec<String> {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut keys: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    keys.extend(old.keys().filter(|k| !new.contains_key(*k)).cloned());
    keys
}

/// Settings that differ, by dotted key.
fn settings_changes(old: &Settings, new: &Settings) -> Changes {
    let flat = |s: &Settings| {
        let mut out = Vec::new();
        leaves("", &serde_json::to_value(s).unwrap_or_default(), &mut out);
        out
    };
    let (old, new) = (flat(old), flat(new));
    let before: HashMap<&str, &Value> = old.iter().map(|(k, v)| (k.as_str(), v)).collect();
    Changes {
        changed: new
            .iter()
            .filter(|(k, v)| before.get(k.as_str()) != Some(&v))
            .map(|(k, _)| k.clone())
            .collect(),
        ..Changes::default()
    }
}

/// Every leaf of a JSON value with its dotted key.
fn leaves(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(&key, v, out);
            }
        }
        leaf => out.push((prefix.to_string(), leaf.clone())),
    }
}

/// Back-end `host:port`s used by both snapshots whose resolved addresses differ.
fn address_changes(old: &Snapshot, new: &Snapshot) -> Changes {
    let resolved = |s: &Snapshot| {
        let mut by_host: HashMap<String, Vec<std::net::SocketAddr>> = HashMap::new();
        let backends = s.routes.iter().flat_map(|r| r.backend.each());
        for backend in backends {
            if let BackendSpec::Http(h) = backend {
                for server in &h.servers {
                    let addrs = by_host
                        .entry(format!("{}:{}", server.host, server.port))
                        .or_default();
                    addrs.extend(server.addr);
                    addrs.sort();
                    addrs.dedup();
                }
            }
        }
        by_host
    };
    let (before, after) = (resolved(old), resolved(new));
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(k, v)| before.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k.clone())
        .collect();
    changed.sort();
    Changes {
        changed,
        ..Changes::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const LISTENER: &str = "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n";
    const DEPLOYMENT: &str = "[[deployments]]\nname = \"d\"\nlistener = \"l\"\n";

    fn compiled(text: &str) -> Snapshot {
        let config = crate::config::parse_str(text, Path::new("t.toml")).unwrap();
        Snapshot::compile(&config, text, Path::new("t.toml")).unwrap()
    }

    fn snapshot(routes: &str) -> Snapshot {
        compiled(&format!("{LISTENER}{DEPLOYMENT}{routes}"))
    }

    /// The summary between `old` and `new` (whole config texts).
    fn summary(old: &str, new: &str) -> String {
        ChangeSummary::between(&compiled(old), &compiled(new)).to_string()
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

    // A listener's network rules are named with the keys that changed.
    #[test]
    fn listener_rules_are_named() {
        let ruled = format!(
            "{LISTENER}allow = [\"10.0.0.0/8\"]\ndeny = [\"10.1.0.0/16\"]\n{DEPLOYMENT}{A}"
        );
        assert_eq!(
            summary(&format!("{LISTENER}{DEPLOYMENT}{A}"), &ruled),
            "listeners ~1 [l (allow, deny)]"
        );
    }

    // Limits, timeouts, the admin address and the access log are named by key.
    #[test]
    fn settings_are_named_by_key() {
        let old = format!("{LISTENER}{DEPLOYMENT}{A}");
        let new = format!("admin = \"127.0.0.1:9\"\n[access_log]\npath = \"stdout\"\n[limits]\nmax_body_bytes = 5\n[timeouts]\nhead = 2\n{LISTENER}{DEPLOYMENT}{A}");
        let line = summary(&old, &new);
        for key in [
            "admin",
            "access_log",
            "limits.max_body_bytes",
            "timeouts.head",
        ] {
            assert!(
                line.starts_with("settings ~4 [") && line.contains(key),
                "{line}"
            );
        }
    }

    /// A TLS listener on the fixture certificate, trusting client certificates from `ca`.
    fn tls_config(handshake_timeout: u32, ca: &Path) -> String {
        let fixture =
            |name: &str| format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"));
        format!(
            "{LISTENER}[listeners.tls]\ncertificates = [{{ cert = \"{}\", key = \"{}\" }}]\nhandshake_timeout = {handshake_timeout}\nclient_auth = {{ ca = \"{}\" }}\n{DEPLOYMENT}{A}",
            fixture("ec-cert.pem"),
            fixture("ec-sec1-key.pem"),
            ca.display()
        )
    }

    // A listener's TLS settings are named; a client CA bundle rewritten on disk is named as a file.
    #[test]
    fn tls_settings_and_referenced_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let fixtures = format!("{}/tests/fixtures/tls", env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(format!("{fixtures}/ec-cert.pem"), &ca).unwrap();
        let before = compiled(&tls_config(10, &ca));
        assert_eq!(
            ChangeSummary::between(&before, &compiled(&tls_config(5, &ca))).to_string(),
            "listeners ~1 [l (tls)]"
        );
        std::fs::copy(format!("{fixtures}/rsa-cert.pem"), &ca).unwrap();
        assert_eq!(
            ChangeSummary::between(&before, &compiled(&tls_config(10, &ca))).to_string(),
            format!("files ~1 [{}]", ca.display())
        );
    }

    // A deployment's policies are named with the keys that changed.
    #[test]
    fn deployment_policies_are_named() {
        let network = format!(
            "{LISTENER}{DEPLOYMENT}network = {{ allow = [\"192.0.2.0/24\"] }}\nrate_limit = {{ requests_per_second = 5 }}\n{A}"
        );
        assert_eq!(
            summary(&format!("{LISTENER}{DEPLOYMENT}{A}"), &network),
            "deployments ~1 [d (network, rate_limit)]"
        );
    }
}
