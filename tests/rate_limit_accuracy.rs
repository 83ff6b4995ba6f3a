//! Accuracy of a deployment rate limit across cores: with 2 workers, a `total`
//! limit of 1,000 requests per second admits 1,000 ± 5% per second over a
//! 10 s run, whether the load is spread over both workers or all of it arrives
//! on one (a single connection). The load is closed-loop and offers several
//! times the limit.

mod common;

use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LIMIT: u64 = 1000;
const RUN: Duration = Duration::from_secs(10);

fn gateway() -> Gateway {
    Gateway::start_with_args(
        &format!(
            r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "limited"
listener = "public"
rate_limit = {{ requests_per_second = {LIMIT}, key = "total" }}

[[deployments.routes]]
path = "/x"
backend = {{ type = "stock", status = 200, body = "ok" }}
"#
        ),
        &["--workers", "2"],
    )
}

/// Runs `connections` closed-loop clients for [`RUN`]; returns the admitted
/// (200) count per elapsed second and the refused (429) total.
fn drive(gw: &Gateway, connections: usize) -> (Vec<u64>, u64) {
    let seconds = RUN.as_secs() as usize;
    let admitted = Arc::new(Mutex::new(vec![0u64; seconds]));
    let refused = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (admitted, refused, stop) = (admitted.clone(), refused.clone(), stop.clone());
            let addr = gw.addr();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                let (mut mine, mut no) = (vec![0u64; seconds], 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let status = client
                        .roundtrip("GET /x HTTP/1.1\r\nHost: gw\r\n\r\n")
                        .status;
                    let second = start.elapsed().as_secs() as usize;
                    match status {
                        200 if second < seconds => mine[second] += 1,
                        200 => {}
                        429 => no += 1,
                        other => panic!("unexpected status {other}"),
                    }
                }
                for (total, n) in admitted.lock().unwrap().iter_mut().zip(mine) {
                    *total += n;
                }
                *refused.lock().unwrap() += no;
            })
        })
        .collect();
    std::thread::sleep(RUN);
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| t.join().unwrap());
    let admitted = admitted.lock().unwrap().clone();
    let refused = *refused.lock().unwrap();
    (admitted, refused)
}

fn check(label: &str, admitted: &[u64], refused: u64) {
    let total: u64 = admitted.iter().sum();
    eprintln!("{label}: admitted per second {admitted:?}, total {total}, refused {refused}");
    let expected = LIMIT * RUN.as_secs();
    assert!(
        total.abs_diff(expected) <= expected / 20,
        "{label}: {total} admitted in {RUN:?}, expected {expected} ± 5%"
    );
    // After the first second (which may spend the initial burst) every second is within 5%.
    for (second, &n) in admitted.iter().enumerate().skip(1) {
        assert!(
            n.abs_diff(LIMIT) <= LIMIT / 20,
            "{label}: second {second} admitted {n}"
        );
    }
    assert!(refused > 0, "{label}: the load never exceeded the limit");
}

fn worker_responses(gw: &Gateway) -> Vec<u64> {
    get(gw.admin_addr(), "/metrics")
        .text()
        .lines()
        .filter(|l| l.starts_with("portcullis_worker_responses_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

// Rule: load spread over both workers is limited to the total, within 5%.
#[test]
fn total_limit_holds_across_two_workers() {
    let gw = gateway();
    let (admitted, refused) = drive(&gw, 8);
    check("spread over 2 workers", &admitted, refused);
    let per_worker = worker_responses(&gw);
    assert!(
        per_worker.len() == 2 && per_worker.iter().all(|&n| n > 0),
        "load did not reach both workers: {per_worker:?}"
    );
}

// Rule: all connections on one worker still get the whole allowance, within 5%.
#[test]
fn total_limit_holds_on_one_worker() {
    let gw = gateway();
    let (admitted, refused) = drive(&gw, 1);
    check("one connection, one worker", &admitted, refused);
}
