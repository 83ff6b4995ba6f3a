//! How back-end host names are resolved, compiled from `[resolver]`, and how
//! long an answer is kept before the name is asked again.
//!
//! With `[resolver]`, a name goes to the configured DNS servers (default:
//! those of /etc/resolv.conf) and its answer is kept for the record TTL,
//! clamped to [`MIN_TTL`] .. [`MAX_TTL`], or for `valid` seconds when the
//! operator overrides it. Names that /etc/hosts gives, and names without a
//! dot (left to the system's search domains), go through the system resolver
//! (getaddrinfo), which gives no TTL. Without `[resolver]`, every name goes
//! through the system resolver, as at start and reload.
//!
//! A back end's `resolve_interval` is an upper bound: the answer is kept for
//! the smaller of it and the TTL; for an answer without a TTL it is the
//! interval. Names are asked again only while some back end re-resolves
//! them: every back end with `[resolver]`, else those with `resolve_interval`.

use crate::config::{seconds, ResolverConfig};
use crate::net::dns::{client, system};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The shortest time an answer is kept, whatever its TTL.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest time an answer is kept, whatever its TTL.
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// How long an answer without a TTL (the system resolver's) is kept.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// How soon a name that did not resolve is asked again (never later than
/// its interval would have it).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// `[resolver]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverSpec {
    /// The DNS servers asked in order; empty: /etc/resolv.conf's, read at each lookup.
    pub nameservers: Vec<SocketAddr>,
    /// Keep every answer this long (`valid`), whatever its TTL.
    pub valid: Option<Duration>,
    /// Wait this long for each server's answer.
    pub timeout: Duration,
}

/// Compiles `[resolver]`. Errors are (key, message).
pub fn compile(config: Option<&ResolverConfig>) -> Result<Option<ResolverSpec>, (String, String)> {
    let Some(config) = config else {
        return Ok(None);
    };
    let mut nameservers = Vec::new();
    for (i, text) in config.nameservers.iter().flatten().enumerate() {
        let address = text.parse::<SocketAddr>().ok().or_else(|| {
            text.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        });
        match address {
            Some(address) if address.port() != 0 => nameservers.push(address),
            _ => {
                return Err((
                    format!("resolver.nameservers[{i}]"),
                    format!("`{text}` is not an IP or IP:PORT address of a DNS server"),
                ))
            }
        }
    }
    if config.nameservers.as_ref().is_some_and(Vec::is_empty) {
        return Err((
            "resolver.nameservers".into(),
            "list at least one DNS server, or leave the key out to use /etc/resolv.conf's".into(),
        ));
    }
    let positive = |key: &str, value: Option<f64>, default: f64| {
        seconds(value.unwrap_or(default)).ok_or_else(|| {
            (
                format!("resolver.{key}"),
                "must be a positive number of seconds".to_string(),
            )
        })
    };
    Ok(Some(ResolverSpec {
        nameservers,
        valid: match config.valid {
            Some(v) => Some(positive("valid", Some(v), 0.0)?),
            None => None,
        },
        timeout: positive("timeout", config.timeout, 2.0)?,
    }))
}

impl ResolverSpec {
    /// One line for `portcullis check`.
    pub fn summary(&self) -> String {
        let servers = match self.nameservers.is_empty() {
            true => "those of /etc/resolv.conf".to_string(),
            false => self
                .nameservers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        };
        let keep = match self.valid {
            Some(valid) => format!("answers kept {} s (valid)", valid.as_secs_f64()),
            None => format!(
                "answers kept for their TTL ({} s .. {} s)",
                MIN_TTL.as_secs(),
                MAX_TTL.as_secs()
            ),
        };
        format!(
            "DNS servers {servers}; {keep}; timeout {} s",
            self.timeout.as_secs_f64()
        )
    }
}

/// A name's addresses and, when the DNS gave one, the record TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub addrs: Vec<IpAddr>,
    pub ttl: Option<Duration>,
}

/// Resolves `host` (blocking: never on a worker). Addresses sorted, no duplicates.
pub fn resolve(spec: Option<&ResolverSpec>, host: &str) -> Result<Found, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let dns = spec.filter(|_| host.contains('.') && !system::in_hosts_file(host));
    let Some(spec) = dns else {
        let mut addrs: Vec<IpAddr> = (host, 0)
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .map(|a| a.ip())
            .collect();
        addrs.sort();
        addrs.dedup();
        return Ok(Found { addrs, ttl: None });
    };
    let servers = match spec.nameservers.is_empty() {
        true => system::system_nameservers(),
        false => spec.nameservers.clone(),
    };
    let found = client::lookup(&servers, host, spec.timeout).map_err(|e| e.to_string())?;
    Ok(Found {
        addrs: found.addrs,
        ttl: found.ttl.map(|t| Duration::from_secs(u64::from(t))),
    })
}

/// How long an answer is kept: `valid`, else the TTL clamped, else the
/// back end's `resolve_interval`, else [`DEFAULT_TTL`]; never longer than
/// `resolve_interval`.
pub fn keep_for(
    spec: Option<&ResolverSpec>,
    ttl: Option<Duration>,
    interval: Option<Duration>,
) -> Duration {
    let keep = spec
        .and_then(|s| s.valid)
        .or(ttl.map(|t| t.clamp(MIN_TTL, MAX_TTL)))
        .or(interval)
        .unwrap_or(DEFAULT_TTL);
    interval.map_or(keep, |cap| keep.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> ResolverConfig {
        toml::from_str(text).unwrap()
    }

    // A nameserver that is not IP or IP:PORT is refused, naming its index.
    #[test]
    fn bad_nameservers_are_refused() {
        let err = compile(Some(&config(
            "nameservers = [\"127.0.0.1:53\", \"dns.test\"]",
        )))
        .unwrap_err();
        assert_eq!(err.0, "resolver.nameservers[1]");
    }

    // A bare IP means port 53.
    #[test]
    fn bare_ips_mean_port_53() {
        let spec = compile(Some(&config("nameservers = [\"10.0.0.53\"]")))
            .unwrap()
            .unwrap();
        assert_eq!(spec.nameservers, ["10.0.0.53:53".parse().unwrap()]);
    }

    // `valid` and `timeout` must be positive seconds.
    #[test]
    fn negative_valid_is_refused() {
        let err = compile(Some(&config("valid = -1"))).unwrap_err();
        assert_eq!(err.0, "resolver.valid");
        let err = compile(Some(&config("timeout = 0"))).unwrap_err();
        assert_eq!(err.0, "resolver.timeout");
    }

    // A name /etc/hosts gives goes through the system resolver, not the DNS
    // servers (here one that would refuse), and comes back without a TTL.
    #[test]
    fn hosts_file_names_skip_the_dns_servers() {
        let spec = compile(Some(&config(
            "nameservers = [\"127.0.0.1:1\"]\ntimeout = 0.2",
        )))
        .unwrap()
        .unwrap();
        let found = resolve(Some(&spec), "localhost").unwrap();
        assert!(
            !found.addrs.is_empty()
                && found.addrs.iter().all(|a| a.is_loopback())
                && found.ttl.is_none(),
            "{found:?}"
        );
    }

    // TTLs are clamped to 1 s .. 1 h; `valid` overrides; resolve_interval bounds.
    #[test]
    fn how_long_answers_are_kept() {
        let s = |n: u64| Some(Duration::from_secs(n));
        let spec = compile(Some(&config(""))).unwrap().unwrap();
        let valid = compile(Some(&config("valid = 7"))).unwrap().unwrap();
        let kept = [
            keep_for(Some(&spec), s(0), None),
            keep_for(Some(&spec), s(86_400), None),
            keep_for(Some(&spec), s(60), s(10)),
            keep_for(Some(&valid), s(60), None),
            keep_for(None, None, s(45)),
            keep_for(None, None, None),
        ];
        assert_eq!(
            kept,
            [
                MIN_TTL,
                MAX_TTL,
                s(10).unwrap(),
                s(7).unwrap(),
                s(45).unwrap(),
                DEFAULT_TTL
            ]
        );
    }
}
