//! Gateway nodes of a cluster for the cluster tests: the node config (a
//! stock back end behind usage plans, `[cluster]` pointing at the test's
//! Redis) and load threads that record every answer with its time.

#![allow(dead_code)]

use crate::common::Client;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const TOKEN: &str = "acme-prod-token-0123456789";
pub const OTHER_TOKEN: &str = "beta-prod-token-9876543210";

/// A gateway node of the cluster in front of a stock back end.
/// `store` is the `[cluster]` store line(s); `limits` the deployment's
/// rate limit line; `quota` the entitlement's quota.
pub fn node_config(store: &str, node: &str, rate_limit: &str, quota: u64) -> String {
    node_config_with(store, node, rate_limit, "", quota)
}

/// Like [`node_config`], with `entitlement_rate` (a `rate_limit = ..` line)
/// on the entitlement: a request it refuses is not counted in the quota.
pub fn node_config_with(
    store: &str,
    node: &str,
    rate_limit: &str,
    entitlement_rate: &str,
    quota: u64,
) -> String {
    format!(
        r#"
state_dir = "state"

[cluster]
{store}
node_name = "{node}"
key_prefix = "it:"
# A loaded test machine may not run the store thread within the default 5 ms.
wait_budget_ms = 250

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "orders"
listener = "public"
path_prefix = "/orders"
usage_plans = {{ token_locations = ["header:X-Client-Token"] }}
{rate_limit}

[[deployments.routes]]
path = "/{{rest*}}"
backend = {{ type = "stock", status = 200, body = "ok" }}

[[usage_plans]]
name = "gold"
[[usage_plans.entitlements]]
name = "orders"
deployments = ["orders"]
quota = {{ limit = {quota}, period = "day" }}
{entitlement_rate}

[[subscribers]]
name = "acme"
usage_plans = ["gold"]
clients = [{{ name = "prod", token = "{TOKEN}" }}]

[[subscribers]]
name = "beta"
usage_plans = ["gold"]
clients = [{{ name = "prod", token = "{OTHER_TOKEN}" }}]
"#
    )
}

/// One answer seen by a load thread.
#[derive(Clone, Copy, Debug)]
pub struct Seen {
    pub at: Duration,
    pub status: u16,
    pub latency: Duration,
}

/// Load threads, each on its own keep-alive connection, until stopped or
/// `max` requests each.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Seen>>>,
}

impl Load {
    pub fn start(
        targets: &[(SocketAddr, IpAddr)],
        token: &str,
        max: usize,
        epoch: Instant,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = targets
            .iter()
            .map(|&(addr, from)| {
                let (stop, token) = (Arc::clone(&stop), token.to_string());
                std::thread::spawn(move || {
                    let request = format!(
                        "GET /orders/x HTTP/1.1\r\nHost: t\r\nX-Client-Token: {token}\r\n\r\n"
                    );
                    let mut client = Client::connect_from(addr, from);
                    let mut seen = Vec::new();
                    while seen.len() < max && !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        if client.try_send(&request).is_err() {
                            client = Client::connect_from(addr, from);
                            continue;
                        }
                        match client.try_read_response(false) {
                            Ok(response) => seen.push(Seen {
                                at: sent - epoch,
                                status: response.status,
                                latency: sent.elapsed(),
                            }),
                            Err(_) => {
                                if stop.load(Ordering::Relaxed) {
                                    break;
                                }
                                client = Client::connect_from(addr, from);
                            }
                        }
                    }
                    seen
                })
            })
            .collect();
        Load { stop, threads }
    }

    pub fn stop(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    pub fn join(self) -> Vec<Seen> {
        let mut all: Vec<Seen> = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort_by_key(|s| s.at);
        all
    }
}

pub fn admitted(seen: &[Seen]) -> usize {
    seen.iter().filter(|s| s.status == 200).count()
}
