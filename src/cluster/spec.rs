//! `[cluster]` compiled: the store's address checked, the CA read, the
//! password resolved, the node named. Errors name the key and say what to
//! write instead; nothing here contacts the store.

use crate::config::{ClusterConfig, OnStoreUnavailable, Secret};
use crate::policy::usage::Fallback;
use std::path::Path;

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreAddress {
    /// One Redis server (`redis://` or `rediss://`).
    Single(String),
    /// Redis Cluster seed nodes.
    Cluster(Vec<String>),
}

/// The cluster settings of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    pub address: StoreAddress,
    /// TLS to the store (`rediss://`).
    pub tls: bool,
    /// PEM of the CA the store's certificate is checked against.
    pub ca_pem: Option<Vec<u8>>,
    pub ca_path: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Where the password comes from, for the summary (`env X`, `file P`).
    pub password_source: Option<String>,
    pub key_prefix: String,
    pub node_name: String,
    pub on_store_unavailable: OnStoreUnavailable,
    pub wait_budget_ms: u64,
}

impl ClusterSpec {
    /// The fallback the workers apply.
    pub fn fallback(&self) -> Fallback {
        match self.on_store_unavailable {
            OnStoreUnavailable::LocalShare => Fallback::LocalShare,
            OnStoreUnavailable::Reject => Fallback::Reject,
            OnStoreUnavailable::Allow => Fallback::Allow,
        }
    }

    /// True when `other` talks to the same store as the same node (what a
    /// reload cannot change without a restart).
    pub fn same_store(&self, other: &ClusterSpec) -> bool {
        self.address == other.address
            && self.tls == other.tls
            && self.ca_pem == other.ca_pem
            && self.username == other.username
            && self.password == other.password
            && self.key_prefix == other.key_prefix
            && self.node_name == other.node_name
    }

    /// One line for `check`'s summary (never the password).
    pub fn summary(&self) -> String {
        let store = match &self.address {
            StoreAddress::Single(url) => url.clone(),
            StoreAddress::Cluster(seeds) => format!("Redis Cluster via {}", seeds.join(", ")),
        };
        let mut line = format!(
            "{store}, node `{}`, key prefix `{}`, on_store_unavailable = {}, wait budget {} ms",
            self.node_name,
            self.key_prefix,
            match self.on_store_unavailable {
                OnStoreUnavailable::LocalShare => "local_share",
                OnStoreUnavailable::Reject => "reject",
                OnStoreUnavailable::Allow => "allow",
            },
            self.wait_budget_ms
        );
        if let Some(ca) = &self.ca_path {
            line.push_str(&format!(", CA {ca}"));
        }
        if let Some(user) = &self.username {
            line.push_str(&format!(", user `{user}`"));
        }
        if let Some(source) = &self.password_source {
            line.push_str(&format!(", password from {source}"));
        }
        line
    }
}

/// Checks one store URL: scheme, host, no credentials in it.
fn check_url(url: &str) -> Result<bool, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("rediss://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("redis://") {
        (false, rest)
    } else {
        return Err(format!(
            "`{url}` is not a store URL: write redis://HOST:PORT or rediss://HOST:PORT"
        ));
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        return Err(
            "credentials do not belong in the URL: use `username` and `password = { env = \"..\" }`"
                .into(),
        );
    }
    if authority.is_empty() {
        return Err(format!("`{url}` names no host"));
    }
    Ok(tls)
}

/// Compiles `[cluster]`; `Err((key, message))` names the key at fault.
pub fn compile(config: &ClusterConfig, config_dir: &Path) -> Result<ClusterSpec, (String, String)> {
    let err = |key: &str, message: String| (format!("cluster.{key}"), message);
    let (address, tls) = match (&config.store, config.cluster_seeds.as_slice()) {
        (Some(_), [_, ..]) => {
            return Err(err(
                "cluster_seeds",
                "give either `store` (one Redis) or `cluster_seeds` (Redis Cluster), not both"
                    .into(),
            ))
        }
        (None, []) => {
            return Err((
                "cluster".into(),
                "needs `store = \"redis://HOST:PORT\"` or `cluster_seeds = [..]`".into(),
            ))
        }
        (Some(url), []) => (
            StoreAddress::Single(url.clone()),
            check_url(url).map_err(|m| err("store", m))?,
        ),
        (None, seeds) => {
            let mut tls = Vec::new();
            for seed in seeds {
                tls.push(check_url(seed).map_err(|m| err("cluster_seeds", m))?);
            }
            if tls.iter().any(|t| *t != tls[0]) {
                return Err(err(
                    "cluster_seeds",
                    "mixes redis:// and rediss://; use one scheme".into(),
                ));
            }
            (StoreAddress::Cluster(seeds.to_vec()), tls[0])
        }
    };
    let ca_pem = match &config.ca {
        Some(_) if !tls => {
            return Err(err(
                "ca",
                "a CA is only used with rediss:// (TLS) store URLs".into(),
            ))
        }
        Some(path) => {
            let path = config_dir.join(path);
            let pem = std::fs::read(&path)
                .map_err(|e| err("ca", format!("cannot read {}: {e}", path.display())))?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(err(
                    "ca",
                    format!("{} holds no PEM certificate", path.display()),
                ));
            }
            Some(pem)
        }
        None => None,
    };
    let password = match &config.password {
        Some(source) => Some(
            source
                .resolve_in(config_dir)
                .map_err(|m| err("password", m))?,
        ),
        None => None,
    };
    let password_source = config.password.as_ref().map(|s| match s {
        crate::config::SecretSource::Inline(_) => "the config file".to_string(),
        crate::config::SecretSource::Env(name) => format!("${name}"),
        crate::config::SecretSource::File(path) => path.clone(),
    });
    if config.key_prefix.is_empty() || config.key_prefix.chars().any(char::is_whitespace) {
        return Err(err(
            "key_prefix",
            "must be a non-empty prefix without spaces, e.g. \"portcullis:\"".into(),
        ));
    }
    let node_name = match &config.node_name {
        Some(name) => name.clone(),
        None => host_name(),
    };
    if node_name.is_empty()
        || !node_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(err(
            "node_name",
            format!("`{node_name}` is not a node name: use letters, digits, `-`, `_` and `.`"),
        ));
    }
    if !(1..=1000).contains(&config.wait_budget_ms) {
        return Err(err(
            "wait_budget_ms",
            "must be between 1 and 1000 (milliseconds a request may wait for the store)".into(),
        ));
    }
    Ok(ClusterSpec {
        address,
        tls,
        ca_pem,
        ca_path: config.ca.clone(),
        username: config.username.clone(),
        password,
        password_source,
        key_prefix: config.key_prefix.clone(),
        node_name,
        on_store_unavailable: config.on_store_unavailable,
        wait_budget_ms: config.wait_budget_ms,
    })
}

/// This machine's host name (the default node name).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(text: &str) -> Result<ClusterSpec, (String, String)> {
        let config: ClusterConfig = toml::from_str(text).unwrap();
        compile(&config, Path::new("/nonexistent"))
    }

    // A store, a password by reference, a node: compiled; the summary names
    // where the password comes from, never the password.
    #[test]
    fn summary_never_shows_the_password() {
        std::env::set_var("SPEC_TEST_REDIS_PW", "hunter2-cluster");
        let spec = cluster(
            "store = \"redis://127.0.0.1:6379\"\npassword = { env = \"SPEC_TEST_REDIS_PW\" }\nnode_name = \"gw-1\"",
        )
        .unwrap();
        let summary = spec.summary();
        assert!(summary.contains("$SPEC_TEST_REDIS_PW") && !summary.contains("hunter2"));
        assert!(!format!("{spec:?}").contains("hunter2"));
    }

    // Each mistake names its key.
    #[test]
    fn mistakes_name_their_key() {
        let key = |text: &str| cluster(text).unwrap_err().0;
        assert_eq!(key("node_name = \"a\""), "cluster");
        assert_eq!(
            key("store = \"redis://a:1\"\ncluster_seeds = [\"redis://b:1\"]"),
            "cluster.cluster_seeds"
        );
        assert_eq!(key("store = \"http://a:1\""), "cluster.store");
        assert_eq!(key("store = \"redis://user:pw@a:1\""), "cluster.store");
        assert_eq!(
            key("store = \"redis://a:1\"\nca = \"ca.pem\""),
            "cluster.ca"
        );
        assert_eq!(
            key("store = \"redis://a:1\"\nnode_name = \"a b\""),
            "cluster.node_name"
        );
        assert_eq!(
            key("store = \"redis://a:1\"\nwait_budget_ms = 0"),
            "cluster.wait_budget_ms"
        );
        assert_eq!(
            key("cluster_seeds = [\"redis://a:1\", \"rediss://b:1\"]"),
            "cluster.cluster_seeds"
        );
    }

    // Only the store's identity needs a restart; the fallback reloads.
    #[test]
    fn fallback_change_is_the_same_store() {
        let a = cluster("store = \"redis://a:1\"\nnode_name = \"n\"").unwrap();
        let b = cluster(
            "store = \"redis://a:1\"\nnode_name = \"n\"\non_store_unavailable = \"reject\"",
        )
        .unwrap();
        let c = cluster("store = \"redis://b:1\"\nnode_name = \"n\"").unwrap();
        assert!(a.same_store(&b) && !a.same_store(&c));
        assert_eq!(b.fallback(), Fallback::Reject);
    }
}
