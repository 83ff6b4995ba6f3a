//! What one load run is: target, mode, bounds, and the request to send.
//!
//! Built once from the command line and shared read-only by every load thread.
//! Only loopback targets are accepted: the harness never loads another machine.

use anyhow::{bail, Context};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host[:port]` as written in the URL, for the `Host` field.
    pub authority: String,
    /// The host name as written (TLS server name).
    pub host: String,
    /// Path and query, at least `/`.
    pub path: String,
    pub tls: bool,
}

impl Target {
    /// Parses `http://host:port/path` or `https://...`; the host must resolve to loopback.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            bail!("URL {url:?} must start with http:// or https://");
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            bail!("URL {url:?} has no host");
        }
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = split_host_port(authority, default_port)
            .with_context(|| format!("URL {url:?}: bad host or port"))?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .find(|a| a.ip().is_loopback())
            .with_context(|| {
                format!("{host} is not a loopback address: the harness only loads this machine")
            })?;
        Ok(Target {
            addr,
            authority: authority.to_string(),
            host,
            path: path.to_string(),
            tls,
        })
    }
}

fn split_host_port(authority: &str, default_port: u16) -> anyhow::Result<(String, u16)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').context("unclosed [")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse()?,
            None => default_port,
        };
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_string(), port.parse()?)),
        None => Ok((authority.to_string(), default_port)),
    }
}

/// Closed loop (each connection sends as soon as its previous answer is in) or
/// open loop (requests at fixed times, latency counted from those times).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Closed,
    /// Requests per second over all connections.
    Open {
        rate: f64,
    },
}

/// TLS settings of the client.
#[derive(Debug, Clone)]
pub struct TlsSpec {
    /// PEM file of the CA (or self-signed certificate) to trust.
    pub ca_file: Option<String>,
    /// Accept any certificate (testing only).
    pub insecure: bool,
    /// Server name to send and verify (default: the URL's host).
    pub server_name: String,
}

/// One load run, fully specified.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub target: Target,
    pub mode: Mode,
    pub connections: usize,
    pub threads: usize,
    /// Stop starting requests after this long.
    pub duration: Duration,
    /// Stop after this many requests (over all connections).
    pub max_requests: Option<u64>,
    /// One request's longest wait for its answer (connect included).
    pub timeout: Duration,
    pub keepalive: bool,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub tls: Option<TlsSpec>,
    /// Print a progress line once per second.
    pub progress: bool,
}

impl LoadSpec {
    /// Checks the combination of settings.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if self.threads == 0 || self.threads > self.connections {
            bail!("--threads must be between 1 and --connections");
        }
        if let Mode::Open { rate } = self.mode {
            if !(rate.is_finite() && rate > 0.0) {
                bail!("--rate must be a positive number");
            }
        }
        if self.duration.is_zero() {
            bail!("--duration must be positive");
        }
        if self.target.tls != self.tls.is_some() {
            bail!("use an https:// URL together with --tls (and --ca FILE or --insecure)");
        }
        if let Some(tls) = &self.tls {
            if tls.ca_file.is_none() && !tls.insecure {
                bail!("--tls needs --ca FILE or --insecure");
            }
        }
        if self.method.is_empty() || !self.method.bytes().all(|b| b.is_ascii_alphabetic()) {
            bail!("--method {:?} is not a method name", self.method);
        }
        Ok(())
    }

    /// Whether `ip` is loopback (the only kind of address the harness loads).
    #[allow(dead_code)]
    pub fn is_local(ip: IpAddr) -> bool {
        ip.is_loopback()
    }
}

/// Parses "10", "10s", "500ms", "2m", "1.5" (seconds when bare).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let seconds = value * scale;
    if !(0.0..1e7).contains(&seconds) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Durations take ms, s and m suffixes; bare numbers are seconds.
    #[test]
    fn durations() {
        assert_eq!(
            ["500ms", "2s", "1m", "1.5"].map(|t| parse_duration(t).ok()),
            [
                Some(Duration::from_millis(500)),
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(60)),
                Some(Duration::from_millis(1500))
            ]
        );
    }

    // A non-loopback target is refused.
    #[test]
    fn remote_target_refused() {
        assert!(Target::parse("http://192.0.2.1:80/").is_err());
    }

    // The path defaults to / and the port to the scheme's.
    #[test]
    fn url_defaults() {
        let t = Target::parse("https://127.0.0.1").unwrap();
        assert_eq!((t.path.as_str(), t.addr.port(), t.tls), ("/", 443, true));
    }
}
