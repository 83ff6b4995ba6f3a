//! Quota counts kept across restarts: a JSON file under `state_dir`, written
//! by a background thread every [`FLUSH_INTERVAL`] when a count changed (so a
//! crash loses at most that much), once more after a drain, and read back
//! before the workers start. Written to a temporary file, synced and renamed
//! over the old one, so a crash mid-write leaves the previous file whole.
//! Never touched on the request path.

use super::registry::{QuotaKey, UsageRegistry};
use crate::config::QuotaPeriod;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, warn};

/// How often changed counts are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

const FILE_NAME: &str = "quota-counts.json";

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    saved_at: i64,
    counters: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    subscriber: String,
    plan: String,
    entitlement: String,
    period: QuotaPeriod,
    /// The period's number since 1970 (minutes, hours, days, weeks or months).
    number: i64,
    used: u64,
}

/// The quota count file of one `state_dir`.
#[derive(Debug, Clone)]
pub struct QuotaStore {
    path: PathBuf,
}

impl QuotaStore {
    /// Creates `dir` if needed and checks that it can be written.
    pub fn open(dir: &Path) -> std::io::Result<QuotaStore> {
        std::fs::create_dir_all(dir)?;
        let probe = dir.join(".write-test");
        std::fs::write(&probe, b"")?;
        let _ = std::fs::remove_file(&probe);
        Ok(QuotaStore {
            path: dir.join(FILE_NAME),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved counts; a missing file is none, an unreadable one is set
    /// aside (renamed `*.unreadable`) with an error in the log.
    pub fn load(&self) -> Vec<(QuotaKey, i64, u64)> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                error!(file = %self.path.display(), error = %e, "cannot read quota counts; starting from zero");
                return Vec::new();
            }
        };
        match serde_json::from_str::<StateFile>(&text) {
            Ok(file) => file
                .counters
                .into_iter()
                .map(|e| {
                    (
                        (e.subscriber, e.plan, e.entitlement, e.period),
                        e.number,
                        e.used,
                    )
                })
                .collect(),
            Err(e) => {
                let aside = self.path.with_extension("json.unreadable");
                let _ = std::fs::rename(&self.path, &aside);
                error!(file = %self.path.display(), moved_to = %aside.display(), error = %e,
                    "quota count file is not valid; set aside, starting from zero");
                Vec::new()
            }
        }
    }

    /// Writes `counts` atomically.
    pub fn save(&self, counts: &[(QuotaKey, i64, u64)], now: i64) -> std::io::Result<()> {
        let file = StateFile {
            version: 1,
            saved_at: now,
            counters: counts
                .iter()
                .map(
                    |((subscriber, plan, entitlement, period), number, used)| Entry {
                        subscriber: subscriber.clone(),
                        plan: plan.clone(),
                        entitlement: entitlement.clone(),
                        period: *period,
                        number: *number,
                        used: *used,
                    },
                )
                .collect(),
        };
        let text = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        let temporary = self.path.with_extension("json.tmp");
        let mut out = std::fs::File::create(&temporary)?;
        out.write_all(&text)?;
        out.sync_data()?;
        std::fs::rename(&temporary, &self.path)
    }
}

/// Writes changed counts every [`FLUSH_INTERVAL`] for the life of the
/// process. `store` is opened late (under `dir`) if quotas only appear with a reload.
pub fn spawn_flusher(
    registry: Arc<UsageRegistry>,
    dir: PathBuf,
    mut store: Option<QuotaStore>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("portcullis-quota".into())
        .spawn(move || {
            crate::control::lower_thread_priority();
            let mut last: Vec<(QuotaKey, i64, u64)> = Vec::new();
            let mut failing = false;
            loop {
                std::thread::sleep(FLUSH_INTERVAL);
                let now = super::now().unix_secs;
                let counts = registry.quota_counts(now);
                if counts == last {
                    continue;
                }
                if store.is_none() {
                    store = QuotaStore::open(&dir).ok();
                }
                let written = match &store {
                    Some(store) => store.save(&counts, now),
                    None => Err(std::io::Error::other("state_dir cannot be written")),
                };
                match written {
                    Ok(()) => {
                        failing = false;
                        last = counts;
                    }
                    Err(e) if !failing => {
                        failing = true;
                        warn!(dir = %dir.display(), error = %e, "cannot write quota counts");
                    }
                    Err(_) => {}
                }
            }
        })?;
    Ok(())
}

/// Writes the counts now (after a drain, before exit).
pub fn flush(registry: &UsageRegistry, store: &QuotaStore) -> std::io::Result<()> {
    let now = super::now().unix_secs;
    store.save(&registry.quota_counts(now), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Saved counts read back unchanged.
    #[test]
    fn counts_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuotaStore::open(dir.path()).unwrap();
        let key = (
            "acme".to_string(),
            "gold".to_string(),
            "orders".to_string(),
            QuotaPeriod::Day,
        );
        store.save(&[(key.clone(), 20_000, 42)], 0).unwrap();
        assert_eq!(store.load(), vec![(key, 20_000, 42)]);
    }

    // A damaged file is set aside and counts start from zero.
    #[test]
    fn damaged_file_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuotaStore::open(dir.path()).unwrap();
        std::fs::write(store.path(), b"{not json").unwrap();
        let loaded = store.load();
        assert!(loaded.is_empty() && dir.path().join("quota-counts.json.unreadable").exists());
    }
}
