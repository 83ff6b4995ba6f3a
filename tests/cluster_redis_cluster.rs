//! Gateway nodes on a real Redis Cluster: six `redis-server
//! --cluster-enabled yes` instances (three masters, three replicas) joined
//! with `redis-cli --cluster create`. Counts land in the cluster; the master
//! holding the quota key is killed, its replica takes over, and once the
//! nodes are idle again the count in Redis equals the requests admitted.

#[path = "support/cluster_nodes.rs"]
mod cluster_nodes;
mod common;
#[path = "support/redis.rs"]
mod redis_support;

use cluster_nodes::*;
use common::*;
use redis_support::*;
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Six instances made into one cluster.
fn redis_cluster(dir: &std::path::Path) -> Vec<RedisServer> {
    let servers: Vec<RedisServer> = (0..6)
        .map(|i| {
            let port = free_cluster_port();
            let mut server = RedisServer::start_with(
                &dir.join(format!("r{i}")),
                port,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "1000",
                    "--cluster-replica-validity-factor",
                    "0",
                ],
            );
            server.cli_args = vec!["-c".into()];
            server
        })
        .collect();
    let addresses: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "1", "--cluster-yes"])
        .output()
        .expect("redis-cli --cluster create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        eventually_within(Duration::from_secs(20), || servers
            .iter()
            .all(|s| s.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))),
        "the Redis Cluster never reported cluster_state:ok"
    );
    servers
}

#[test]
fn quota_on_redis_cluster_survives_a_master_kill() {
    if !redis_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut servers = redis_cluster(dir.path());
    let seeds: Vec<String> = servers
        .iter()
        .take(3)
        .map(|s| format!("\"{}\"", s.url))
        .collect();
    let store = format!("cluster_seeds = [{}]", seeds.join(", "));
    let nodes: Vec<Gateway> = (0..2)
        .map(|i| {
            let node = Gateway::start(&node_config(&store, &format!("node{i}"), "", 100_000));
            node.wait_log_line("store up", |l| l.contains("cluster store up"));
            node
        })
        .collect();
    let targets = [(nodes[0].addr(), LOCAL), (nodes[1].addr(), LOCAL)];
    let first = admitted(&Load::start(&targets, TOKEN, 100, Instant::now()).join()) as u64;
    assert_eq!(first, 200);
    let key = servers[0].keys_with("quota:acme:").into_iter().next();
    // --scan on one node sees only its keys: ask each master.
    let key = key.or_else(|| {
        servers
            .iter()
            .find_map(|s| s.keys_with("quota:acme:").into_iter().next())
    });
    let key = key.expect("the quota key in the cluster");
    assert!(eventually_within(EVENT_TIMEOUT, || servers[0]
        .hash_sum(&key)
        == first));
    // Kill the master holding the key (a replica answers EXISTS with a redirect).
    let master = servers
        .iter()
        .position(|s| {
            let out = Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &s.port.to_string(), "EXISTS", &key])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).trim() == "1"
        })
        .expect("the master of the quota key");
    servers[master].kill();
    let survivor = (master + 1) % 6;
    assert!(
        eventually_within(Duration::from_secs(30), || servers[survivor]
            .cli(&["CLUSTER", "INFO"])
            .contains("cluster_state:ok")
            && servers[survivor].cli(&["EXISTS", &key]).trim() == "1"),
        "no replica took over: {} / {:?} / master was {master}\n{}",
        servers[survivor]
            .cli(&["CLUSTER", "INFO"])
            .lines()
            .next()
            .unwrap_or(""),
        servers[survivor].cli(&["EXISTS", &key]),
        servers[survivor].cli(&["CLUSTER", "NODES"]),
    );
    let second = admitted(&Load::start(&targets, TOKEN, 100, Instant::now()).join()) as u64;
    let total = first + second;
    assert!(
        eventually_within(Duration::from_secs(30), || servers[survivor].hash_sum(&key)
            == total),
        "Redis Cluster holds {}, admitted {total}",
        servers[survivor].hash_sum(&key)
    );
}
