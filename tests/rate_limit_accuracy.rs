//! Accuracy of a deployment rate limit across cores: with 2 workers, a `total`
//! limit of 1,000 requests per second never admits more than the bound the
//! limiter states (`src/policy/usage/bucket.rs`): `rate·W + burst + cores·batch`
//! in any window of `W` seconds, whether the load is spread over both workers or
//! all of it arrives on one (a single connection), and one connection on one
//! worker can draw the whole initial burst. The load is closed-loop (each
//! connection keeps a few requests pipelined) for 10 s and exceeds the limit.
//!
//! Nothing here depends on how fast the machine is: every window is measured by
//! the test, and a request counts in a window only if it was both sent and
//! answered inside it, so the gateway decided on it inside it. The exact refill
//! rate (1,000 per second, no more and no less) is held by the bucket's unit
//! tests, which pass `now` in (`bound_holds_across_workers`,
//! `one_worker_gets_everything`), and the limiter benchmark.

mod common;

use common::*;
use std::time::{Duration, Instant};

const LIMIT: u64 = 1000;
/// The default burst: a tenth of a second's worth.
const BURST: u64 = 100;
/// What a worker leases at once at this rate: 5 ms worth (under a quarter of the burst).
const BATCH: u64 = 5;
const WORKERS: u64 = 2;
const RUN: Duration = Duration::from_secs(10);
/// Requests each connection keeps in flight (pipelined), so that the load exceeds the
/// limit with room to spare.
const DEPTH: usize = 4;

const REQUEST: &str = "GET /x HTTP/1.1\r\nHost: gw\r\n\r\n";

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
        &["--workers", &WORKERS.to_string()],
    )
}

/// One answer: when its request was sent and when the answer was in (since the
/// start of the run), and whether it was admitted (200) or refused (429).
#[derive(Clone, Copy)]
struct Answer {
    sent: Duration,
    answered: Duration,
    admitted: bool,
}

/// Sends `n` pipelined requests on `client` and records their answers.
fn exchange(client: &mut Client, n: usize, start: Instant, answers: &mut Vec<Answer>) {
    let sent = start.elapsed();
    client.send(REQUEST.repeat(n));
    for _ in 0..n {
        let status = client.read_response().status;
        let answered = start.elapsed();
        assert!(status == 200 || status == 429, "unexpected status {status}");
        answers.push(Answer {
            sent,
            answered,
            admitted: status == 200,
        });
    }
}

/// Answers counted by each worker so far.
fn per_worker(gw: &Gateway) -> Vec<u64> {
    let metrics = gw.metrics();
    (0..WORKERS)
        .map(|w| {
            let series = format!("portcullis_worker_responses_total{{worker=\"{w}\"");
            metric_sum(&metrics, &series) as u64
        })
        .collect()
}

/// Opens connections, one request each, until there are at least `min` and every
/// worker holds one: the kernel spreads connections over the workers by a hash, so a
/// fixed number of them could all land on one. A connection stays on the worker that
/// accepted it, found from the per-worker answer counts.
fn connections_on_every_worker(
    gw: &Gateway,
    min: usize,
    start: Instant,
    answers: &mut Vec<Answer>,
) -> Vec<Client> {
    let mut clients = Vec::new();
    let mut seen = vec![0u64; WORKERS as usize];
    let mut holding = vec![false; WORKERS as usize];
    while clients.len() < min || holding.contains(&false) {
        assert!(
            clients.len() < 64,
            "64 connections all landed on one worker"
        );
        let mut client = Client::connect(gw.addr());
        exchange(&mut client, 1, start, answers);
        clients.push(client);
        let total = clients.len() as f64;
        gw.wait_metric("portcullis_worker_responses_total", total);
        let now = per_worker(gw);
        for (w, (before, after)) in seen.iter().zip(&now).enumerate() {
            if after > before {
                holding[w] = true;
            }
        }
        seen = now;
    }
    clients
}

/// Runs closed-loop load on every client until [`RUN`] has passed since `start`;
/// returns every answer.
fn drive(clients: Vec<Client>, start: Instant) -> Vec<Answer> {
    let threads: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                while start.elapsed() < RUN {
                    exchange(&mut client, DEPTH, start, &mut answers);
                }
                answers
            })
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

/// The most the limiter may admit in a window of `seconds`.
fn bound(seconds: f64) -> u64 {
    (LIMIT as f64 * seconds).floor() as u64 + BURST + WORKERS * BATCH
}

/// Checks the bound over the whole run (`elapsed`: from before the first request to
/// after the last answer) and over each whole second of it.
fn check(label: &str, answers: &[Answer], elapsed: Duration) {
    let admitted = answers.iter().filter(|a| a.admitted).count() as u64;
    let refused = answers.len() as u64 - admitted;
    let seconds = elapsed.as_secs() as usize + 1;
    let within = |from: Duration, to: Duration| {
        answers
            .iter()
            .filter(|a| a.admitted && a.sent >= from && a.answered < to)
            .count() as u64
    };
    let per_second: Vec<u64> = (0..seconds as u64)
        .map(|s| within(Duration::from_secs(s), Duration::from_secs(s + 1)))
        .collect();
    eprintln!(
        "{label}: admitted per second {per_second:?}, total {admitted} in {elapsed:?}, refused {refused}"
    );
    assert!(
        refused > 0,
        "{label}: the load never exceeded the limit, so the bound was not put to the test"
    );
    let total_bound = bound(elapsed.as_secs_f64());
    assert!(
        admitted <= total_bound,
        "{label}: {admitted} admitted in {elapsed:?}, more than rate·W + burst + cores·batch = {total_bound}"
    );
    for (second, &n) in per_second.iter().enumerate() {
        assert!(
            n <= bound(1.0),
            "{label}: {n} admitted within second {second}, more than {}",
            bound(1.0)
        );
    }
    // The bucket starts full: whatever the machine's speed, at least the burst (less
    // what leases that lapsed unspent may have dropped) is admitted.
    assert!(
        admitted >= BURST - WORKERS * BATCH,
        "{label}: only {admitted} admitted"
    );
}

// Rule: load spread over both workers stays within rate·W + burst + cores·batch.
#[test]
fn total_limit_holds_across_two_workers() {
    let gw = gateway();
    let start = Instant::now();
    let mut answers = Vec::new();
    let clients = connections_on_every_worker(&gw, 8, start, &mut answers);
    answers.extend(drive(clients, start));
    check("spread over 2 workers", &answers, start.elapsed());
    let per_worker = per_worker(&gw);
    assert!(
        per_worker.iter().all(|&n| n > 0),
        "load did not reach both workers: {per_worker:?}"
    );
}

// Rule: all of the load on one connection (one worker) stays within the bound too, and
// that worker alone draws the whole initial burst.
#[test]
fn total_limit_holds_on_one_worker() {
    let gw = gateway();
    let start = Instant::now();
    let answers = drive(vec![Client::connect(gw.addr())], start);
    check("one connection, one worker", &answers, start.elapsed());
    // The first answers are spent from the full bucket: a worker that could only
    // reach its own share of it would refuse some of them. A lease that lapsed
    // unspent may drop up to a batch.
    let first = (BURST - BATCH) as usize;
    assert!(
        answers.iter().take(first).all(|a| a.admitted),
        "one worker could not draw the burst: {} of the first {first} admitted",
        answers.iter().take(first).filter(|a| a.admitted).count()
    );
}
