//! Several gateway nodes sharing limits on one real `redis-server`: three
//! separate `portcullis run` processes, loaded evenly and unevenly.
//!
//! The bounds checked are the ones `src/cluster/mod.rs` states:
//! - quota: admitted ≤ quota while Redis answers; the sum of the nodes'
//!   contributions in Redis is exactly the admitted count once idle
//!   reservations have been handed back;
//! - rate: admitted in any window W ≤ limit·W + burst + the outstanding
//!   reservations of all nodes (each node < 1.5 batches, batch ≤ burst).
//!
//! Also: a `client_ip` limit for two client addresses, a node killed with
//! -9, and token hygiene (no token or token digest anywhere in Redis).

#[path = "support/cluster_nodes.rs"]
mod cluster_nodes;
mod common;
#[path = "support/redis.rs"]
mod redis_support;

use cluster_nodes::*;
use common::*;
use redis_support::*;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// These tests load several nodes each: one at a time, so that a 2-core
/// machine runs one cluster at once.
static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// The quota hash of subscriber `who` (one per period).
fn quota_key(redis: &RedisServer, who: &str) -> Option<String> {
    redis.keys_with(&format!("quota:{who}:")).into_iter().next()
}

fn start_nodes(redis: &RedisServer, rate_limit: &str, quota: u64, n: usize) -> Vec<Gateway> {
    let store = format!("store = \"{}\"", redis.url);
    (0..n)
        .map(|i| {
            let node = Gateway::start(&node_config(&store, &format!("node{i}"), rate_limit, quota));
            node.wait_log_line("store up", |l| l.contains("cluster store up"));
            node
        })
        .collect()
}

/// Starts node `name` again on the `state_dir` of `stopped` (a node that
/// has exited), once its store is up.
fn restart_node(redis: &RedisServer, stopped: &Gateway, name: &str, quota: u64) -> Gateway {
    let state = stopped.config_path().parent().unwrap().join("state");
    let store = format!("store = \"{}\"", redis.url);
    let node = Gateway::start(&node_config(&store, name, "", quota).replace(
        "state_dir = \"state\"",
        &format!("state_dir = {:?}", state.display().to_string()),
    ));
    node.wait_log_line("store up", |l| l.contains("cluster store up"));
    node
}

// Quota 1,500 for one subscriber, load uneven over three nodes (3 : 1 : 1
// connections) offering more than the quota: never more than 1,500
// admitted; after the idle hand-back Redis holds exactly the admitted count;
// a last client on one node then gets exactly the rest.
#[test]
fn quota_never_over_and_exact_after_hand_back() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let nodes = start_nodes(&redis, "", 1_500, 3);
    let epoch = Instant::now();
    let targets = [
        (nodes[0].addr(), LOCAL),
        (nodes[0].addr(), LOCAL),
        (nodes[0].addr(), LOCAL),
        (nodes[1].addr(), LOCAL),
        (nodes[2].addr(), LOCAL),
    ];
    let seen = Load::start(&targets, TOKEN, 400, epoch).join();
    let first = admitted(&seen);
    assert!(first <= 1_500, "admitted {first} of a 1,500 quota");
    let key = quota_key(&redis, "acme").expect("the quota key in Redis");
    assert!(
        eventually_within(EVENT_TIMEOUT, || redis.hash_sum(&key) == first as u64),
        "Redis holds {} after hand-back, admitted {first}",
        redis.hash_sum(&key)
    );
    // The rest of the quota, from one node: exactly what is left.
    let rest = Load::start(&[(nodes[1].addr(), LOCAL)], TOKEN, 3_000, epoch);
    let rest = rest.join();
    let total = first + admitted(&rest);
    assert_eq!(total, 1_500, "first {first}, then {}", admitted(&rest));
    assert!(
        eventually_within(EVENT_TIMEOUT, || redis.hash_sum(&key) == 1_500),
        "Redis holds {}",
        redis.hash_sum(&key)
    );
    // Token hygiene: names only, never a token or its digest.
    let digest = portcullis::config::digest::sha256_hex(TOKEN);
    for (name, values) in redis.dump() {
        for text in std::iter::once(&name).chain(&values) {
            assert!(
                !text.contains(TOKEN) && !text.contains(&digest),
                "Redis key {name} carries the token or its digest: {text}"
            );
        }
    }
}

/// Counts admitted in every window of `w` starting at `step` intervals
/// after `skip`; the largest.
fn busiest_window(seen: &[Seen], skip: Duration, w: Duration) -> usize {
    let ok: Vec<Duration> = seen
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| s.at)
        .collect();
    let end = ok.last().copied().unwrap_or_default();
    let mut start = skip;
    let mut most = 0;
    while start + w <= end {
        let n = ok
            .iter()
            .filter(|t| **t >= start && **t < start + w)
            .count();
        most = most.max(n);
        start += Duration::from_millis(100);
    }
    most
}

// A deployment limit of 200/s (burst 20) shared by three nodes under
// closed-loop load: every one-second window after the first holds at most
// limit·W + burst + the nodes' outstanding reservations, and the whole run
// admits no more than limit·T + burst + that same term.
#[test]
fn rate_bound_holds_across_nodes() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let limit = "rate_limit = { requests_per_second = 200, burst = 20 }";
    let nodes = start_nodes(&redis, limit, 1_000_000, 3);
    let epoch = Instant::now();
    let targets: Vec<_> = nodes
        .iter()
        .flat_map(|n| [(n.addr(), LOCAL), (n.addr(), LOCAL)])
        .collect();
    let load = Load::start(&targets, TOKEN, usize::MAX, epoch);
    std::thread::sleep(Duration::from_secs(4));
    let seen = load.stop();
    let run = seen.last().unwrap().at - seen[0].at;
    // For the record (`-- --nocapture`): admitted in each whole second.
    let per_second: Vec<usize> = (0..run.as_secs())
        .map(|i| {
            let (from, to) = (Duration::from_secs(i), Duration::from_secs(i + 1));
            seen.iter()
                .filter(|s| s.status == 200 && s.at >= from && s.at < to)
                .count()
        })
        .collect();
    eprintln!("admitted per second over 3 nodes, limit 200/s: {per_second:?}");
    // Outstanding reservations: < 1.5 batches per node, a batch ≤ burst.
    let outstanding = 3 * 30;
    // Client-side clocks see an admission up to one answer's latency late.
    let late = seen.iter().map(|s| s.latency).max().unwrap();
    let bound_1s = 200.0 * (1.0 + late.as_secs_f64()) + 20.0 + outstanding as f64;
    let busiest = busiest_window(&seen, Duration::from_secs(1), Duration::from_secs(1));
    assert!(
        busiest as f64 <= bound_1s,
        "busiest second admitted {busiest}, bound {bound_1s:.0}"
    );
    let total = admitted(&seen);
    let bound_all = 200.0 * (run.as_secs_f64() + late.as_secs_f64()) + 20.0 + outstanding as f64;
    assert!(
        total as f64 <= bound_all,
        "admitted {total} in {run:?}, bound {bound_all:.0}"
    );
    // Most of the allowance is used (nothing stranded by the split).
    assert!(
        total as f64 >= 0.5 * 200.0 * run.as_secs_f64(),
        "admitted only {total} in {run:?}"
    );
}

// `key = "client_ip"`: two client addresses, each spread over two nodes,
// each held to its own limit, keyed in Redis by address (not by token).
#[test]
fn client_ip_limit_per_address_across_nodes() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let limit = r#"rate_limit = { requests_per_second = 50, burst = 5, key = "client_ip" }"#;
    let nodes = start_nodes(&redis, limit, 1_000_000, 2);
    let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
    let epoch = Instant::now();
    let load_a = Load::start(
        &[(nodes[0].addr(), a), (nodes[1].addr(), a)],
        TOKEN,
        usize::MAX,
        epoch,
    );
    let load_b = Load::start(
        &[(nodes[0].addr(), b), (nodes[1].addr(), b)],
        OTHER_TOKEN,
        usize::MAX,
        epoch,
    );
    std::thread::sleep(Duration::from_secs(3));
    let (seen_a, seen_b) = (load_a.stop(), load_b.stop());
    for (who, seen) in [("127.0.0.2", &seen_a), ("127.0.0.3", &seen_b)] {
        let run = seen.last().unwrap().at - seen[0].at;
        let late = seen.iter().map(|s| s.latency).max().unwrap().as_secs_f64();
        let bound = 50.0 * (run.as_secs_f64() + late) + 5.0 + 2.0 * 8.0;
        let total = admitted(seen);
        assert!(
            total as f64 <= bound,
            "{who}: admitted {total} in {run:?}, bound {bound:.0}"
        );
        assert!(
            total as f64 >= 0.5 * 50.0 * run.as_secs_f64(),
            "{who}: only {total} in {run:?}"
        );
        assert!(
            !redis.keys_with(&format!("client_ip:{who}")).is_empty(),
            "no Redis key for {who}"
        );
    }
}

// A node killed with -9 mid-run: the other nodes go on; the quota is never
// exceeded, and once the survivors are idle Redis holds their counts plus
// at most the dead node's stranded reservation; restarted, the node keeps
// that reservation counted (its state file may lag) and the quota ends
// exactly used up.
#[test]
fn node_killed_mid_run_strands_at_most_its_reservation() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let mut nodes = start_nodes(&redis, "", 600, 3);
    let epoch = Instant::now();
    let load = Load::start(
        &[(nodes[0].addr(), LOCAL), (nodes[1].addr(), LOCAL)],
        TOKEN,
        250,
        epoch,
    );
    let victim_load = Load::start(&[(nodes[2].addr(), LOCAL)], TOKEN, 60, epoch);
    let victim = victim_load.join();
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &nodes[2].pid().to_string()])
        .status();
    assert!(nodes[2].wait_exit(Duration::from_secs(5)).is_some());
    let survivors = load.join();
    let more = Load::start(&[(nodes[0].addr(), LOCAL)], TOKEN, 700, epoch).join();
    let total = admitted(&survivors) + admitted(&more) + admitted(&victim);
    assert!(total <= 600, "admitted {total} of a 600 quota");
    let key = quota_key(&redis, "acme").unwrap();
    // What the dead node reserved and never used is all that is stranded:
    // once the survivors are idle, Redis holds the admitted count plus that.
    let dead_field: u64 = redis
        .cli(&["HGET", &key, "node2"])
        .trim()
        .parse()
        .unwrap_or(0);
    let victim = admitted(&victim) as u64;
    assert!(
        dead_field >= victim,
        "dead node field {dead_field}, it admitted {victim}"
    );
    let stranded = dead_field - victim;
    assert!(
        eventually_within(EVENT_TIMEOUT, || redis.hash_sum(&key)
            == total as u64 + stranded),
        "Redis holds {}, admitted {total}, stranded {stranded}",
        redis.hash_sum(&key)
    );
    // The dead node starts again on its own state_dir. Its file was not
    // final (it was killed), so it may lag what the node admitted: the node
    // takes its field in Redis as its count instead of lowering it, and the
    // cluster then admits exactly what is left of the quota, never more.
    let revived = restart_node(&redis, &nodes[2], "node2", 600);
    let last = Load::start(&[(revived.addr(), LOCAL)], TOKEN, 700, epoch).join();
    if stranded > 0 {
        revived.wait_log_line("the floor taken from the store", |l| {
            l.contains("quota count taken from the store")
        });
    }
    let after = total + admitted(&last);
    assert!(
        after <= 600,
        "admitted {after} of a 600 quota after the restart"
    );
    let field: u64 = redis.cli(&["HGET", &key, "node2"]).trim().parse().unwrap();
    assert!(
        field >= dead_field,
        "the restarted node lowered its field from {dead_field} to {field}"
    );
    assert_eq!(
        after as u64 + stranded,
        600,
        "the quota is used up, less only the dead run's stranded reservation"
    );
}

// Two nodes whose shared limits differ: each logs the disagreement and
// counts it in a metric; `/usage` shows the node, the live nodes and the
// cluster-wide count beside this node's.
#[test]
fn nodes_that_disagree_are_logged_and_counted() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let store = format!("store = \"{}\"", redis.url);
    let a = Gateway::start(&node_config(&store, "node0", "", 100));
    let b = Gateway::start(&node_config(&store, "node1", "", 200));
    for node in [&a, &b] {
        node.wait_metric_until("portcullis_cluster_config_disagreements", "1", |v| v == 1.0);
        node.wait_log_line("disagreement", |l| {
            l.contains("disagree about the shared limits")
        });
    }
    let seen = Load::start(&[(a.addr(), LOCAL)], TOKEN, 5, Instant::now()).join();
    assert_eq!(admitted(&seen), 5);
    let usage = get(a.admin_addr(), "/usage?subscriber=acme");
    let body: serde_json::Value = serde_json::from_slice(&usage.body).unwrap();
    assert_eq!(body["cluster"]["node"], "node0");
    assert_eq!(body["cluster"]["live_nodes"], 2);
    let quota = &body["subscribers"][0]["entitlements"][0]["quota"];
    assert_eq!(quota["cluster"]["this_node_used"], 5);
}

// A shared quota changed by a reload re-scales on every node, as on one node:
// 60 of a 100 quota spent on one node; both nodes' files then say 80; the
// cluster admits exactly 20 more, and Redis holds 80 after the hand-back.
#[test]
fn shared_quota_changed_at_reload_rescales_across_nodes() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let nodes = start_nodes(&redis, "", 100, 2);
    let epoch = Instant::now();
    let first = Load::start(&[(nodes[0].addr(), LOCAL)], TOKEN, 60, epoch).join();
    assert_eq!(admitted(&first), 60);
    let key = quota_key(&redis, "acme").expect("the quota key in Redis");
    assert!(
        eventually_within(EVENT_TIMEOUT, || redis.hash_sum(&key) == 60),
        "Redis holds {} after hand-back, admitted 60",
        redis.hash_sum(&key)
    );
    for node in &nodes {
        let text = std::fs::read_to_string(node.config_path()).unwrap();
        assert!(text.contains("limit = 100,"), "{text}");
        std::fs::write(
            node.config_path(),
            text.replace("limit = 100,", "limit = 80,"),
        )
        .unwrap();
        node.wait_log_line("the reload", |l| {
            l.contains("result=\"applied\"") || l.contains("result=applied")
        });
    }
    let targets = [(nodes[0].addr(), LOCAL), (nodes[1].addr(), LOCAL)];
    let rest = Load::start(&targets, TOKEN, 40, epoch).join();
    assert_eq!(
        admitted(&rest),
        20,
        "after the quota went from 100 to 80 with 60 spent"
    );
    assert!(
        eventually_within(EVENT_TIMEOUT, || redis.hash_sum(&key) == 80),
        "Redis holds {} after hand-back",
        redis.hash_sum(&key)
    );
}

// A node stopped cleanly (SIGTERM) while it holds a quota reservation, then
// started again on the same state_dir: its file is final, so it writes its
// exact count over the field and the reservation is released at once; the
// quota is then used up exactly.
#[test]
fn clean_restart_releases_the_reservation() {
    if !redis_available() {
        return;
    }
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let mut nodes = start_nodes(&redis, "", 100, 1);
    let epoch = Instant::now();
    let first = admitted(&Load::start(&[(nodes[0].addr(), LOCAL)], TOKEN, 5, epoch).join());
    assert_eq!(first, 5);
    let key = quota_key(&redis, "acme").unwrap();
    let held: u64 = redis.cli(&["HGET", &key, "node0"]).trim().parse().unwrap();
    assert!(held > 5, "the node reserved {held}: nothing to release");
    nodes[0].sigterm();
    assert!(nodes[0].wait_exit(Duration::from_secs(10)).is_some());
    let again = restart_node(&redis, &nodes[0], "node0", 100);
    assert!(
        eventually_within(EVENT_TIMEOUT, || redis.hash_sum(&key) == 5),
        "Redis holds {} after a clean restart (the node held {held}), counted 5",
        redis.hash_sum(&key)
    );
    let rest = admitted(&Load::start(&[(again.addr(), LOCAL)], TOKEN, 150, epoch).join());
    assert_eq!(first + rest, 100);
}
