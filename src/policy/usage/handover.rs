//! Quota counts across a zero-downtime takeover: the usage plans' side of
//! [`StateHandover`]. At hand-over the old process sends every count it has
//! (and flushes them to `state_dir`); the new process starts from them. After
//! the old process drained, it sends what it counted since, and the new
//! process adds that to its live counters. Nothing counted is lost or counted
//! twice. Blobs are JSON with a version.

use super::persist::QuotaStore;
use super::registry::{QuotaKey, UsageRegistry};
use crate::service::state::StateHandover;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Serialize, Deserialize)]
struct Blob {
    version: u32,
    counts: Vec<(QuotaKey, i64, u64)>,
}

/// The quota counters' hand-over.
pub struct QuotaHandover {
    registry: Arc<UsageRegistry>,
    /// Where the old process flushes at hand-over (when quotas are configured).
    store: Mutex<Option<QuotaStore>>,
    /// What the last `export_at_handover` sent, to count the drain delta from.
    exported: Mutex<HashMap<QuotaKey, (i64, u64)>>,
}

impl QuotaHandover {
    pub fn new(registry: Arc<UsageRegistry>) -> Self {
        QuotaHandover {
            registry,
            store: Mutex::new(None),
            exported: Mutex::new(HashMap::new()),
        }
    }

    /// The store to flush to at hand-over.
    pub fn set_store(&self, store: Option<QuotaStore>) {
        if let Ok(mut slot) = self.store.lock() {
            *slot = store;
        }
    }
}

fn encode(counts: Vec<(QuotaKey, i64, u64)>) -> Vec<u8> {
    serde_json::to_vec(&Blob { version: 1, counts }).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Result<Vec<(QuotaKey, i64, u64)>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let blob: Blob = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if blob.version != 1 {
        return Err(format!(
            "quota hand-over version {} not understood",
            blob.version
        ));
    }
    Ok(blob.counts)
}

impl StateHandover for QuotaHandover {
    fn export_at_handover(&self) -> Vec<u8> {
        let now = crate::time::clock::now().unix_secs;
        let counts = self.registry.quota_counts(now);
        if let Ok(store) = self.store.lock() {
            if let Some(store) = store.as_ref() {
                if let Err(e) = store.save(&counts, now) {
                    tracing::warn!(error = %e, "cannot write quota counts at hand-over");
                }
            }
        }
        if let Ok(mut exported) = self.exported.lock() {
            *exported = counts
                .iter()
                .map(|(key, number, used)| (key.clone(), (*number, *used)))
                .collect();
        }
        encode(counts)
    }

    fn import_at_handover(&self, state: &[u8]) -> Result<(), String> {
        self.registry.seed(decode(state)?);
        Ok(())
    }

    fn export_after_drain(&self) -> Vec<u8> {
        let now = crate::time::clock::now().unix_secs;
        let exported = self.exported.lock().map(|e| e.clone()).unwrap_or_default();
        let delta = self
            .registry
            .quota_counts(now)
            .into_iter()
            .filter_map(|(key, number, used)| {
                let before = match exported.get(&key) {
                    Some(&(n, u)) if n == number => u,
                    _ => 0,
                };
                (used > before).then(|| (key, number, used - before))
            })
            .collect();
        // The successor owns the counts and the file from here on.
        if let Ok(store) = self.store.lock() {
            if let Some(store) = store.as_ref() {
                store.stop();
            }
        }
        encode(delta)
    }

    fn import_after_drain(&self, delta: &[u8]) -> Result<(), String> {
        self.registry.add_counts(decode(delta)?);
        // The predecessor's last write may be newer than ours: write again.
        if let Ok(store) = self.store.lock() {
            if let Some(store) = store.as_ref() {
                store.force_next();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::clock::Now;
    use std::path::Path;

    /// 2026-09-21 UTC: day number 20717.
    const NOW: i64 = 1_790_000_000;

    /// A plan with a daily quota, held by subscriber `s`.
    const CONFIG: &str = "[[listeners]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n[[deployments]]\nname = \"d\"\nlistener = \"l\"\nusage_plans = { token_locations = [\"header:X-Token\"] }\n[[deployments.routes]]\npath = \"/\"\nbackend = { type = \"stock\", status = 200 }\n[[usage_plans]]\nname = \"p\"\n[[usage_plans.entitlements]]\nname = \"e\"\ndeployments = [\"d\"]\nquota = { limit = 10, period = \"day\" }\n[[subscribers]]\nname = \"s\"\nusage_plans = [\"p\"]\nclients = [{ name = \"c\", token = \"0123456789abcdef\" }]\n";

    /// A blob counting u64::MAX requests of `s` today: more than any process counts.
    const HUGE: &[u8] =
        br#"{"version":1,"counts":[[["s","p","e","day"],20717,18446744073709551615]]}"#;

    // Regression (fuzz target quota_state): a drain delta added to a seed of the same period
    // overflowed (a panic in debug builds, a wrapped count in release); it saturates now.
    #[test]
    fn huge_drain_delta_on_a_seed_saturates() {
        let handover = QuotaHandover::new(Arc::new(UsageRegistry::default()));
        assert_eq!(handover.import_at_handover(HUGE), Ok(()));
        assert_eq!(handover.import_after_drain(HUGE), Ok(()));
    }

    // Regression (fuzz target quota_state): a drain delta added to a live counter overflowed
    // in QuotaCounter::add; the count saturates at the counter's largest value.
    #[test]
    fn huge_drain_delta_on_a_live_counter_saturates() {
        let registry = Arc::new(UsageRegistry::default());
        let handover = QuotaHandover::new(Arc::clone(&registry));
        let config = crate::config::parse_str(CONFIG, Path::new("t.toml")).unwrap();
        let mut usage = super::super::compile_usage(&config, &["d"], &mut Vec::new()).unwrap();
        handover.import_at_handover(HUGE).unwrap();
        let now = Now {
            mono_ns: 1,
            unix_secs: NOW,
        };
        registry.attach(std::iter::empty(), &mut usage, now);
        handover.import_after_drain(HUGE).unwrap();
        let key = (
            "s".into(),
            "p".into(),
            "e".into(),
            crate::config::QuotaPeriod::Day,
        );
        assert_eq!(
            registry.quota_counts(NOW),
            vec![(key, 20717, (1 << 40) - 1)]
        );
    }
}
