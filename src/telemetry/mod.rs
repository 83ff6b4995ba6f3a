//! What a request leaves behind, step 8 of its way: its record (request id,
//! decision code, outcome: [`record`]), the access log line and its writer
//! thread ([`access_log`]), per-worker counters published per tick
//! ([`counters`]), the aggregated security events of the audit log
//! ([`audit`]) and the history of reloads ([`reloads`]).
//!
//! Every stage writes into these types; nothing here reads a snapshot or a
//! connection. Imports only [`crate::http`] and [`crate::time`].

pub mod access_log;
pub mod audit;
pub mod counters;
pub mod format;
pub mod record;
pub mod reloads;
