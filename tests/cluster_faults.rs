//! Cluster nodes when their Redis fails: paused with SIGSTOP, restarted
//! empty, reached over TLS, refused by `reject`, and a reload that tries to
//! change the store. Real `redis-server` processes, real gateway processes.

#[path = "support/cluster_nodes.rs"]
mod cluster_nodes;
mod common;
#[path = "support/redis.rs"]
mod redis_support;
#[path = "support/tls.rs"]
mod tls_support;

use cluster_nodes::*;
use common::*;
use redis_support::*;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn quota_key(redis: &RedisServer) -> Option<String> {
    redis.keys_with("quota:acme:").into_iter().next()
}

/// Waits until `node` has logged its `times`-th "cluster store up".
fn wait_store_up(node: &Gateway, times: usize) {
    assert!(
        eventually_within(EVENT_TIMEOUT, || node
            .log_text()
            .matches("cluster store up")
            .count()
            >= times),
        "the store never came back up:\n{}",
        node.log_text()
    );
}

fn start_node(
    cluster: &str,
    node: &str,
    rate_limit: &str,
    quota: u64,
    env: &[(&str, &str)],
) -> Gateway {
    start_node_with(cluster, node, rate_limit, "", quota, env)
}

fn start_node_with(
    cluster: &str,
    node: &str,
    rate_limit: &str,
    entitlement_rate: &str,
    quota: u64,
    env: &[(&str, &str)],
) -> Gateway {
    let text = node_config_with(cluster, node, rate_limit, entitlement_rate, quota);
    let gw = Gateway::start_with_env(&text, &[], env);
    gw.wait_log_line("store up", |l| l.contains("cluster store up"));
    gw
}

// Redis stopped for 5 s (SIGSTOP) under load, `local_share`: no request
// waits for it (the stall is 5 s; every answer comes far sooner), each node
// holds about limit ÷ 2 meanwhile, and once Redis continues and the nodes
// are idle, the quota count in Redis equals the requests admitted.
#[test]
fn redis_paused_five_seconds_local_share() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let store = format!(
        "store = \"{}\"\non_store_unavailable = \"local_share\"",
        redis.url
    );
    let limit = "rate_limit = { requests_per_second = 100, burst = 10 }";
    // On the entitlement: a request it refuses is not counted in the quota.
    let nodes: Vec<Gateway> = (0..2)
        .map(|i| start_node_with(&store, &format!("node{i}"), "", limit, 1_000_000, &[]))
        .collect();
    // Both nodes know of each other before the fault (local_share divides by 2).
    for node in &nodes {
        node.wait_log_line("two live nodes", |l| l.contains("live=2"));
    }
    let epoch = Instant::now();
    let load = Load::start(
        &[(nodes[0].addr(), LOCAL), (nodes[1].addr(), LOCAL)],
        TOKEN,
        usize::MAX,
        epoch,
    );
    std::thread::sleep(Duration::from_millis(500));
    let paused_at = epoch.elapsed();
    redis.pause();
    for node in &nodes {
        node.wait_log_line("store down", |l| l.contains("cluster store down"));
    }
    let down_at = epoch.elapsed();
    std::thread::sleep(Duration::from_secs(5).saturating_sub(down_at - paused_at));
    let resumed_at = epoch.elapsed();
    redis.resume();
    for node in &nodes {
        wait_store_up(node, 2);
    }
    std::thread::sleep(Duration::from_millis(300));
    let seen = load.stop();
    // No request waited for the stopped store: the budget is 250 ms here
    // (node_config), the store thread's own timeout 400 ms, the stall 5 s;
    // 2 s leaves a loaded machine its margin.
    let slowest = seen.iter().map(|s| s.latency).max().unwrap();
    assert!(
        slowest < Duration::from_secs(2),
        "a request took {slowest:?}"
    );
    // While down, each node enforces 100 ÷ 2 per second.
    let during: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.at >= down_at && s.at < resumed_at && s.status == 200)
        .collect();
    let window = (resumed_at - down_at).as_secs_f64();
    let bound = 100.0 * window + 10.0 + 2.0 * 10.0;
    assert!(
        (during.len() as f64) <= bound,
        "admitted {} in {window:.1} s of local_share, bound {bound:.0}",
        during.len()
    );
    assert!(
        during.len() as f64 >= 0.4 * 100.0 * window,
        "admitted only {} in {window:.1} s of local_share",
        during.len()
    );
    let admitted = admitted(&seen) as u64;
    let key = quota_key(&redis).expect("quota key");
    assert!(
        eventually_within(EVENT_TIMEOUT, || redis.hash_sum(&key) == admitted),
        "Redis holds {}, admitted {admitted}",
        redis.hash_sum(&key)
    );
}

// Redis restarted without its data: every node publishes its contribution
// again, so the quota count comes back whole. The store's password is
// given by reference (an environment variable).
#[test]
fn redis_restarted_empty_gets_every_count_back() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let password = "cluster-test-password-1";
    let mut redis =
        RedisServer::start_with_deferred(dir.path(), free_port(), &["--requirepass", password]);
    redis.cli_args = vec!["-a".into(), password.into(), "--no-auth-warning".into()];
    redis.wait_ready();
    let store = format!(
        "store = \"{}\"\npassword = {{ env = \"IT_REDIS_PASSWORD\" }}",
        redis.url
    );
    let env = [("IT_REDIS_PASSWORD", password)];
    let nodes: Vec<Gateway> = (0..2)
        .map(|i| start_node(&store, &format!("node{i}"), "", 10_000, &env))
        .collect();
    let epoch = Instant::now();
    let seen = Load::start(
        &[(nodes[0].addr(), LOCAL), (nodes[1].addr(), LOCAL)],
        TOKEN,
        150,
        epoch,
    )
    .join();
    let admitted = admitted(&seen) as u64;
    assert_eq!(admitted, 300);
    let key = quota_key(&redis).expect("quota key");
    assert!(eventually_within(EVENT_TIMEOUT, || redis.hash_sum(&key) == admitted));
    redis.restart_empty();
    assert!(
        eventually_within(EVENT_TIMEOUT, || redis.hash_sum(&key) == admitted),
        "after an empty restart Redis holds {}, admitted {admitted}",
        redis.hash_sum(&key)
    );
    for node in &nodes {
        assert!(node.metric("portcullis_cluster_quota_republished_total") >= 1.0);
    }
    assert!(
        !nodes[0].log_text().contains(password),
        "the password reached the log"
    );
}

// `on_store_unavailable = "reject"`: while Redis is stopped, requests that
// need it are answered 503 with Retry-After, quickly.
#[test]
fn reject_answers_503_while_redis_is_stopped() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let store = format!(
        "store = \"{}\"\non_store_unavailable = \"reject\"",
        redis.url
    );
    let limit = "rate_limit = { requests_per_second = 1000, burst = 100 }";
    let node = start_node(&store, "node0", limit, 1_000_000, &[]);
    assert_eq!(request(node.addr(), request_text()).status, 200);
    redis.pause();
    node.wait_log_line("store down", |l| l.contains("cluster store down"));
    let answer = request(node.addr(), request_text());
    redis.resume();
    assert_eq!(answer.status, 503);
    assert!(answer
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("retry-after") && v == "1"));
    wait_store_up(&node, 2);
}

fn request_text() -> String {
    format!(
        "GET /orders/x HTTP/1.1\r\nHost: t\r\nX-Client-Token: {TOKEN}\r\nConnection: close\r\n\r\n"
    )
}

// TLS to Redis: `rediss://` with the CA the test made; counts arrive.
#[test]
fn tls_to_redis_with_a_test_ca() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let pki = tls_support::Pki::new("redis");
    let issued = pki.issue("redis", "redis", &["127.0.0.1", "localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cert = issued.cert.display().to_string();
    let key = issued.key.display().to_string();
    let ca = pki.ca_path.display().to_string();
    let args = [
        "--tls-port",
        &port.to_string(),
        "--tls-cert-file",
        &cert,
        "--tls-key-file",
        &key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "no",
    ];
    // The plain port is not used by the gateway; redis-cli talks TLS too.
    let plain = free_port();
    let mut redis = RedisServer::start_with_deferred(dir.path(), plain, &args);
    redis.cli_args = vec!["--tls".into(), "--cacert".into(), ca.clone()];
    redis.port = port;
    redis.wait_ready();
    let store = format!("store = \"rediss://127.0.0.1:{port}\"\nca = \"{ca}\"");
    let node = start_node(&store, "node0", "", 1_000, &[]);
    let seen = Load::start(&[(node.addr(), LOCAL)], TOKEN, 20, Instant::now()).join();
    assert_eq!(admitted(&seen), 20);
    let key = quota_key(&redis).expect("quota key over TLS");
    assert!(eventually_within(EVENT_TIMEOUT, || redis.hash_sum(&key) == 20));
}

// A reload may change on_store_unavailable, not the store: that is refused
// with a message that says a restart is needed.
#[test]
fn reload_refuses_a_store_change() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let store = format!("store = \"{}\"", redis.url);
    let node = start_node(&store, "node0", "", 1_000, &[]);
    let written = std::fs::read_to_string(node.config_path()).unwrap();
    let moved = written.replace(&redis.url, "redis://127.0.0.1:1");
    std::fs::write(node.config_path(), moved).unwrap();
    let line = node.wait_log_line("refused reload", |l| l.contains("a restart is needed"));
    assert!(line.contains("[cluster] store changed"), "{line}");
    let policy = written.replace(
        &store,
        &format!("{store}\non_store_unavailable = \"reject\""),
    );
    std::fs::write(node.config_path(), policy).unwrap();
    node.wait_log_line("applied reload", |l| l.contains("result=\"applied\""));
    assert_eq!(request(node.addr(), request_text()).status, 200);
}
