//! `[resolver]`: how back-end host names are resolved again while the
//! gateway runs (the DNS servers to ask, a TTL override, the query timeout).
//! Absent: names are resolved at start and reload only, unless a back end
//! asks for `resolve_interval`. Plain serde data; `crate::snapshot::resolver`
//! validates it.

use serde::{Deserialize, Serialize};

/// The `[resolver]` table as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ResolverConfig {
    /// `IP` or `IP:PORT` of the DNS servers, asked in order (default: the
    /// `nameserver` lines of /etc/resolv.conf).
    #[serde(default)]
    pub nameservers: Option<Vec<String>>,
    /// Seconds to keep an answer, whatever its TTL (nginx's `valid=`);
    /// absent: the record TTL, clamped to 1 s .. 1 h.
    #[serde(default)]
    pub valid: Option<f64>,
    /// Seconds to wait for each DNS server's answer (default 2).
    #[serde(default)]
    pub timeout: Option<f64>,
}
