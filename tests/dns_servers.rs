//! A back end naming a host: every address the DNS gives is a server of its
//! own (balanced over, reported, ejected), and the servers follow the DNS
//! answer when it changes, asked again no sooner than its TTL allows. A real
//! DNS server on loopback (`dns_support`) answers from a table the test
//! changes; the back-end servers listen on 127.0.0.1, .2 and .3, same port.

mod common;
#[path = "dns_support/mod.rs"]
mod dns_support;
#[path = "servers_support/mod.rs"]
mod servers_support;

use common::*;
use dns_support::DnsServer;
use servers_support::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const NAME: &str = "svc.example.test";

/// Servers `a`, `b` and `c` on 127.0.0.1, .2 and .3, one port.
fn three_servers() -> [Server; 3] {
    let a = Server::start("a");
    let port = a.addr.port();
    let on = |last: u8| SocketAddr::from(([127, 0, 0, last], port));
    [
        a,
        Server::start_on("b", on(2)),
        Server::start_on("c", on(3)),
    ]
}

/// A gateway config whose route `/api/x` goes to `http://NAME:port/x`,
/// names resolved by `dns`.
fn named_config(dns: &DnsServer, port: u16, extra: &str) -> String {
    config(&[(([127, 0, 0, 1], port).into(), 1)], extra)
        .replace(
            &format!("http://127.0.0.1:{port}/x"),
            &format!("http://{NAME}:{port}/x"),
        )
        .replace(
            "[[listeners]]",
            &format!(
                "[resolver]\nnameservers = [\"{}\"]\n\n[[listeners]]",
                dns.addr
            ),
        )
}

/// How `/config` and `/metrics` name the server at 127.0.0.`last`.
fn server_name(port: u16, last: u8) -> String {
    format!("http://{NAME}:{port} (127.0.0.{last})")
}

// Rule: every address of the name is a server: round robin shares requests
// equally over them, and `/config` and `/metrics` list each one.
#[test]
fn every_address_of_a_name_is_a_server() {
    let dns = DnsServer::start(60);
    dns.set(NAME, &["127.0.0.1", "127.0.0.2"]);
    let [a, b, c] = three_servers();
    let port = a.addr.port();
    let gw = Gateway::start(&named_config(&dns, port, ""));
    let results = load(gw.addr(), "/api/x", "", 2, 50);
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    assert_eq!(
        (served_by(&results, "a"), served_by(&results, "b"), c.hits()),
        (50, 50, 0),
        "{results:?}"
    );
    let config = get(gw.admin_addr(), "/config").text();
    let metrics = gw.metrics();
    for last in [1, 2] {
        let name = server_name(port, last);
        assert!(
            config.contains(&format!("\"server\":\"{name}\"")),
            "{config}"
        );
        assert!(
            metrics.contains(&format!("portcullis_server_up{{server=\"{name}\"}} 1")),
            "{metrics}"
        );
    }
    drop(b);
}

// Rule: when the answer changes (127.0.0.3 added, 127.0.0.2 removed), the
// traffic follows without a failed request, and the name is asked again no
// sooner than the record TTL allows.
#[test]
fn servers_follow_the_answer_on_its_ttl() {
    let dns = DnsServer::start(1);
    dns.set(NAME, &["127.0.0.1", "127.0.0.2"]);
    let [a, b, c] = three_servers();
    let gw = Gateway::start(&named_config(&dns, a.addr.port(), ""));
    let mut client = Client::connect(gw.addr());
    let mut send = |statuses: &mut Vec<u16>| {
        let response = client.roundtrip(get_req("/api/x"));
        statuses.push(response.status);
        response.header("x-server").unwrap_or("").to_string()
    };
    let mut statuses = Vec::new();
    for _ in 0..10 {
        send(&mut statuses);
    }
    assert!(b.hits() > 0 && c.hits() == 0, "before the change");
    dns.set(NAME, &["127.0.0.1", "127.0.0.3"]);
    let changed = Instant::now();
    let mut followed = false;
    while !followed && changed.elapsed() < Duration::from_secs(10) {
        let recent: Vec<String> = (0..10).map(|_| send(&mut statuses)).collect();
        followed = recent.iter().all(|s| s == "a" || s == "c") && recent.contains(&"c".into());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        followed,
        "traffic did not follow the answer\n{}",
        gw.log_text()
    );
    // The address that left takes no request any more: its server may go.
    // Requests go on for three TTLs, during which the name is asked again.
    drop(b);
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(3) {
        assert_ne!(send(&mut statuses), "b");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Asked again on the TTL (1 s), never sooner, however many requests.
    let asked = dns.a_questions(NAME);
    assert!(asked.len() >= 4, "asked {} times", asked.len());
    let gaps: Vec<Duration> = asked.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().all(|gap| *gap >= Duration::from_millis(900)),
        "asked again sooner than the TTL: {gaps:?}"
    );
}

// Rule: an address whose server is gone is ejected like any server, and the
// requests go on to the others.
#[test]
fn a_dead_address_is_ejected() {
    let dns = DnsServer::start(60);
    dns.set(NAME, &["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
    let [a, b, c] = three_servers();
    let port = a.addr.port();
    c.kill();
    let outlier = ", outlier = { consecutive_failures = 3, base_ejection = 30 }";
    let gw = Gateway::start(&named_config(&dns, port, outlier));
    let results = load(gw.addr(), "/api/x", "", 1, 30);
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let dead = server_name(port, 3);
    gw.wait_metric(
        &format!("portcullis_server_ejections_total{{server=\"{dead}\""),
        1.0,
    );
    assert_eq!(
        gw.metric(&format!("portcullis_server_up{{server=\"{dead}\"")),
        0.0
    );
    drop(b);
}

// Rule: `check` refuses a nameserver that is not an IP address, and a
// negative `valid`, naming the key; a good `[resolver]` is in the summary.
#[test]
fn resolver_settings_are_checked() {
    let base = config(&[("127.0.0.1:9".parse().unwrap(), 1)], "");
    let with = |table: &str| {
        base.replace(
            "[[listeners]]",
            &format!("[resolver]\n{table}\n[[listeners]]"),
        )
    };
    let (ok, output) = check_config(&with("nameservers = [\"dns.example.test:53\"]"));
    assert!(
        !ok && output.contains("resolver.nameservers[0]"),
        "{output}"
    );
    let (ok, output) = check_config(&with("valid = -5"));
    assert!(
        !ok && output.contains("resolver.valid") && output.contains("positive"),
        "{output}"
    );
    let (ok, output) = check_config(&with("nameservers = [\"127.0.0.1:5353\"]\nvalid = 30"));
    assert!(
        ok && output.contains("resolver: DNS servers 127.0.0.1:5353; answers kept 30 s (valid)"),
        "{output}"
    );
}
