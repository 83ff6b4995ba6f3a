//! What `[measure]` reads around each measured run: counters from a gateway
//! peer's admin `/metrics`, and a Redis service's `INFO commandstats`. The
//! differences become extra columns: 2xx answers per counter increment (e.g.
//! per round trip to the cluster store), Redis commands per 2xx answer and
//! 2xx answers per Redis script call.

use super::file::Scenario;
use super::peers::Peer;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Redis commands that are calls of a script (one round trip each).
const SCRIPT_CALLS: [&str; 6] = [
    "evalsha",
    "eval",
    "evalsha_ro",
    "eval_ro",
    "fcall",
    "fcall_ro",
];

/// One extra figure of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Extra {
    pub label: String,
    /// `None` where there was nothing to divide by (no increments).
    pub value: Option<f64>,
}

/// What was read at one moment.
pub struct Readings {
    counters: Vec<Option<f64>>,
    redis: Option<BTreeMap<String, u64>>,
}

/// Reads every counter `[measure]` names (a counter the peer does not have,
/// or a peer without an admin endpoint, reads as absent).
pub fn read(scenario: &Scenario, peer: &Peer, redis_port: Option<u16>) -> anyhow::Result<Readings> {
    let wanted = &scenario.file.measure.gateway_counters;
    let metrics = match (peer.admin_port, wanted.is_empty()) {
        (Some(port), false) => Some(http_get(port, "/metrics")?),
        _ => None,
    };
    let counters = wanted
        .iter()
        .map(|c| metrics.as_deref().and_then(|m| metric_value(m, &c.metric)))
        .collect();
    let redis = match redis_port {
        Some(port) => Some(redis_commandstats(port)?),
        None => None,
    };
    Ok(Readings { counters, redis })
}

/// The extra figures of a run from the readings before and after it and its
/// 2xx answers; also the Redis commands it caused, by name (for the JSON).
pub fn extras(
    scenario: &Scenario,
    before: &Readings,
    after: &Readings,
    ok_answers: u64,
) -> (Vec<Extra>, Option<BTreeMap<String, u64>>) {
    let per = |count: f64| (count > 0.0).then(|| ok_answers as f64 / count);
    let mut extras: Vec<Extra> = scenario
        .file
        .measure
        .gateway_counters
        .iter()
        .enumerate()
        .map(|(i, spec)| Extra {
            label: spec.label.clone(),
            value: match (before.counters[i], after.counters[i]) {
                (Some(b), Some(a)) => per(a - b),
                _ => None,
            },
        })
        .collect();
    let (Some(b), Some(a)) = (&before.redis, &after.redis) else {
        return (extras, None);
    };
    let mut delta = BTreeMap::new();
    for (name, calls) in a {
        let calls = calls.saturating_sub(b.get(name).copied().unwrap_or(0));
        // Our own INFO calls are not the gateway's.
        if calls > 0 && name != "info" {
            delta.insert(name.clone(), calls);
        }
    }
    let total: u64 = delta.values().sum();
    let scripts: u64 = SCRIPT_CALLS.iter().filter_map(|c| delta.get(*c)).sum();
    extras.push(Extra {
        label: "Redis cmds per 2xx".into(),
        value: (ok_answers > 0).then(|| total as f64 / ok_answers as f64),
    });
    extras.push(Extra {
        label: "2xx per Redis script call".into(),
        value: per(scripts as f64),
    });
    (extras, Some(delta))
}

/// The value of the series `name` in a Prometheus text page (the sum where
/// it has several label sets); `None` when absent.
pub fn metric_value(page: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if rest.starts_with('{') {
            rest.rsplit_once('}').map(|(_, v)| v)
        } else if rest.starts_with(' ') {
            Some(rest)
        } else {
            None
        };
        if let Some(v) = value.and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()) {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

/// The body of `GET path` on 127.0.0.1:`port` (Connection: close).
fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to the admin endpoint 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .with_context(|| format!("reading {path} from 127.0.0.1:{port}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("admin answer without a head")?;
    if !head.starts_with("HTTP/1.1 200") {
        anyhow::bail!(
            "{path} on 127.0.0.1:{port}: {}",
            head.lines().next().unwrap_or("")
        );
    }
    Ok(body.to_string())
}

/// Calls by command name from Redis's `INFO commandstats` on 127.0.0.1:`port`.
pub fn redis_commandstats(port: u16) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to Redis on 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")?;
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let length: usize = first
        .strip_prefix('$')
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("Redis answered INFO with {:?}", first.trim()))?;
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(parse_commandstats(&String::from_utf8_lossy(&body)))
}

/// `cmdstat_get:calls=3,usec=…` lines → {"get": 3}; a subcommand
/// (`cmdstat_client|setname`) keeps its full name.
pub fn parse_commandstats(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields
                .split(',')
                .find_map(|f| f.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // A series is found by its exact name, summed over label sets; a longer
    // name with the same start is another series.
    #[test]
    fn metric_values() {
        let page = "# HELP x_total help\n# TYPE x_total counter\nx_total 7\nx_total_more 100\n\
                    y_count{le=\"1\"} 2\ny_count{le=\"2\"} 3.5\n";
        assert_eq!(metric_value(page, "x_total"), Some(7.0));
        assert_eq!(metric_value(page, "y_count"), Some(5.5));
        assert_eq!(metric_value(page, "x"), None);
        assert_eq!(metric_value(page, "z"), None);
    }

    // Redis 7's commandstats lines, subcommands included; other lines ignored.
    #[test]
    fn commandstats() {
        let text = "# Commandstats\r\ncmdstat_evalsha:calls=12,usec=340,usec_per_call=28.33,rejected_calls=0,failed_calls=0\r\n\
                    cmdstat_client|setname:calls=1,usec=2,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n\r\n";
        let stats = parse_commandstats(text);
        assert_eq!(
            stats.into_iter().collect::<Vec<_>>(),
            [
                ("client|setname".to_string(), 1),
                ("evalsha".to_string(), 12)
            ]
        );
    }
}
