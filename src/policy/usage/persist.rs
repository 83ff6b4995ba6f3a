//! Quota counts kept across restarts: a JSON file under `state_dir`, written
//! by a background thread every [`FLUSH_INTERVAL`] when a count changed (so a
//! crash loses at most that much), once more after a drain, and read back
//! before the workers start. Written to a temporary file, synced and renamed
//! over the old one, so a crash mid-write leaves the previous file whole.
//! Never touched on the request path.
//!
//! The last write after a drain marks the file `complete`: its counts are
//! final. A file without the mark (the process was killed, or the file is
//! older than the mark) may lag the real counts by up to one
//! [`FLUSH_INTERVAL`]; in cluster mode the node then trusts the store's
//! record of its own counts over the file's (see `cluster::sync`).

use super::registry::{QuotaKey, UsageRegistry};
use crate::config::QuotaPeriod;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Written after the workers stopped: the counts are final.
    #[serde(default)]
    complete: bool,
    counters: Vec<Entry>,
}

/// What a `state_dir` file held.
#[derive(Debug, Default, PartialEq)]
pub struct SavedCounts {
    pub counts: Vec<(QuotaKey, i64, u64)>,
    /// The process that wrote them stopped cleanly after writing them.
    pub complete: bool,
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

/// The quota count file of one `state_dir`. Clones share one write lock and
/// the flusher's switches.
#[derive(Debug, Clone)]
pub struct QuotaStore {
    path: PathBuf,
    shared: Arc<StoreShared>,
}

#[derive(Debug, Default)]
struct StoreShared {
    /// One write at a time within the process (flusher, hand-over, exit).
    writing: std::sync::Mutex<()>,
    /// Set when a successor owns the file: this process writes no more.
    stopped: AtomicBool,
    /// Set to write at the next tick even if nothing changed.
    force: AtomicBool,
}

static TEMPORARY_SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl QuotaStore {
    /// Creates `dir` if needed and checks that it can be written.
    pub fn open(dir: &Path) -> std::io::Result<QuotaStore> {
        std::fs::create_dir_all(dir)?;
        let probe = dir.join(".write-test");
        std::fs::write(&probe, b"")?;
        let _ = std::fs::remove_file(&probe);
        Ok(QuotaStore {
            path: dir.join(FILE_NAME),
            shared: Arc::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This process writes no more (a successor took the counts over).
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.shared.stopped.load(Ordering::SeqCst)
    }

    /// The flusher writes at its next tick even if the counts look unchanged
    /// (after a predecessor, whose last write may be older, handed over).
    pub fn force_next(&self) {
        self.shared.force.store(true, Ordering::SeqCst);
    }

    /// The saved counts; a missing file is none, an unreadable one is set
    /// aside (renamed `*.unreadable`) with an error in the log. Neither is
    /// `complete`.
    pub fn load(&self) -> SavedCounts {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return SavedCounts::default(),
            Err(e) => {
                error!(file = %self.path.display(), error = %e, "cannot read quota counts; starting from zero");
                return SavedCounts::default();
            }
        };
        match serde_json::from_str::<StateFile>(&text) {
            Ok(file) => SavedCounts {
                complete: file.complete,
                counts: file
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
            },
            Err(e) => {
                let aside = self.path.with_extension("json.unreadable");
                let _ = std::fs::rename(&self.path, &aside);
                error!(file = %self.path.display(), moved_to = %aside.display(), error = %e,
                    "quota count file is not valid; set aside, starting from zero");
                SavedCounts::default()
            }
        }
    }

    /// Writes `counts` atomically (nothing once this process stopped writing).
    pub fn save(&self, counts: &[(QuotaKey, i64, u64)], now: i64) -> std::io::Result<()> {
        self.write(counts, now, false)
    }

    /// Writes the final counts, marked `complete`; this process writes no
    /// more after them.
    pub fn save_final(&self, counts: &[(QuotaKey, i64, u64)], now: i64) -> std::io::Result<()> {
        self.write(counts, now, true)
    }

    fn write(
        &self,
        counts: &[(QuotaKey, i64, u64)],
        now: i64,
        complete: bool,
    ) -> std::io::Result<()> {
        let file = StateFile {
            version: 1,
            saved_at: now,
            complete,
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
        let _one_writer = self.shared.writing.lock();
        if self.is_stopped() {
            return Ok(());
        }
        if complete {
            // Whatever the flusher had under way waits on the lock, then sees this.
            self.stop();
        }
        // A name of its own: during a takeover two processes write here.
        let temporary = self.path.with_extension(format!(
            "json.{}.{}.tmp",
            std::process::id(),
            TEMPORARY_SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut out = std::fs::File::create(&temporary)?;
            out.write_all(&text)?;
            out.sync_data()?;
            std::fs::rename(&temporary, &self.path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
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
            crate::service::threads::lower_thread_priority();
            let mut last: Vec<(QuotaKey, i64, u64)> = Vec::new();
            let mut failing = false;
            loop {
                std::thread::sleep(FLUSH_INTERVAL);
                if store.as_ref().is_some_and(QuotaStore::is_stopped) {
                    return;
                }
                let now = crate::time::clock::now().unix_secs;
                let counts = registry.quota_counts(now);
                let forced = store
                    .as_ref()
                    .is_some_and(|s| s.shared.force.swap(false, Ordering::SeqCst));
                if counts == last && !forced {
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

/// Writes the final counts (after a drain, before exit).
pub fn flush(registry: &UsageRegistry, store: &QuotaStore) -> std::io::Result<()> {
    let now = crate::time::clock::now().unix_secs;
    store.save_final(&registry.quota_counts(now), now)
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
        assert_eq!(store.load().counts, vec![(key.clone(), 20_000, 42)]);
        assert!(!store.load().complete);
        // The final write is marked complete, and nothing is written after it.
        store.save_final(&[(key.clone(), 20_000, 43)], 0).unwrap();
        store.save(&[(key.clone(), 20_000, 44)], 0).unwrap();
        let last = store.load();
        assert_eq!(last.counts, vec![(key, 20_000, 43)]);
        assert!(last.complete);
    }

    // Two writers at once (two processes during a takeover) never leave a
    // damaged file behind.
    #[test]
    fn concurrent_writers_leave_a_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let stores = [
            QuotaStore::open(dir.path()).unwrap(),
            QuotaStore::open(dir.path()).unwrap(),
        ];
        let threads: Vec<_> = stores
            .into_iter()
            .enumerate()
            .map(|(i, store)| {
                std::thread::spawn(move || {
                    let key = (
                        format!("s{i}"),
                        "p".to_string(),
                        "e".to_string(),
                        QuotaPeriod::Day,
                    );
                    for n in 0..200 {
                        store.save(&[(key.clone(), 1, n)], 0).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(serde_json::from_str::<StateFile>(&text).is_ok());
    }

    // A damaged file is set aside and counts start from zero.
    #[test]
    fn damaged_file_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = QuotaStore::open(dir.path()).unwrap();
        std::fs::write(store.path(), b"{not json").unwrap();
        let loaded = store.load();
        assert!(
            loaded.counts.is_empty() && dir.path().join("quota-counts.json.unreadable").exists()
        );
    }
}
