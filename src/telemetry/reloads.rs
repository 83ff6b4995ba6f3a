//! The history of reloads: counters by result for `/metrics`, and the last
//! attempt that applied or rejected something for `/config`. Written by the
//! reloader, read by the admin endpoint.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Signal,
    FileChange,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "signal",
            Trigger::FileChange => "file",
        }
    }
}

/// Reload counters by result, for the metrics endpoint, and the last attempt
/// that applied, rejected or (on SIGHUP) found nothing to change, for `/config`.
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub applied: AtomicU64,
    pub unchanged: AtomicU64,
    pub failed: AtomicU64,
    pub last: Mutex<Option<LastReload>>,
}

/// The last reload attempt that was not a file event skipped as unchanged: an
/// operator who saved a file, or sent SIGHUP, can see on `/config` whether it
/// is what the gateway serves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastReload {
    /// `applied`, `rejected`, or `unchanged` (a SIGHUP that found nothing to change).
    pub result: String,
    /// `file` or `signal`.
    pub trigger: String,
    /// RFC 3339, milliseconds.
    pub at: String,
    /// Why it was rejected (file, line, column, key and message), or null.
    pub error: Option<String>,
}

impl ReloadStats {
    pub fn record(&self, result: &str, trigger: Trigger, error: Option<String>) {
        let last = LastReload {
            result: result.to_string(),
            trigger: trigger.as_str().to_string(),
            at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            error,
        };
        match self.last.lock() {
            Ok(mut slot) => *slot = Some(last),
            Err(poisoned) => *poisoned.into_inner() = Some(last),
        }
    }

    /// The last applied or rejected reload, if any since start.
    pub fn last(&self) -> Option<LastReload> {
        match self.last.lock() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}
