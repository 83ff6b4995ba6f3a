//! Bad input never panics the gateway, held on stable CI as well as by the
//! fuzz targets: every entry point the targets drive (fuzz/src/entry_points.rs,
//! included here by path) gets its committed seed corpus (fuzz/corpus/<target>/)
//! and a few thousand mutations of it from a fixed-seed generator, in a debug
//! build (overflow checks on). Then a running gateway is sent a few hundred
//! mutated request heads over real sockets and must still answer a valid
//! request with 200.

#[path = "../fuzz/src/entry_points.rs"]
mod entry_points;

mod common;

use common::*;
use std::io::Read;
use std::net::Shutdown;
use std::path::PathBuf;
use std::time::Duration;

/// splitmix64: a few lines, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    /// A generator whose sequence depends only on `name`.
    fn for_name(name: &str) -> Rng {
        let seed = name
            .bytes()
            .fold(0x5eed_cafe_u64, |h, b| h.rotate_left(5) ^ u64::from(b));
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that sit on the parsers' decision points.
const INTERESTING: &[u8] = b"\0\t\r\n \"#%&+,-./0129:;=?AFZ[\\]_afz{}~\x7f\x80\xc3\xff";

/// One seed with one to four random edits: bit flips, interesting bytes set or
/// inserted, ranges removed or repeated, a cut, or a piece of another seed.
fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut out = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        let end = (at + 1 + rng.below(16)).min(out.len());
        let interesting = INTERESTING[rng.below(INTERESTING.len())];
        match rng.below(7) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 if at < out.len() => out[at] = interesting,
            2 => out.insert(at, interesting),
            3 if at < end => drop(out.drain(at..end)),
            4 if at < end => {
                let piece = out[at..end].repeat(1 + rng.below(8));
                out.splice(at..at, piece);
            }
            5 => out.truncate(at),
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let to = (from + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..to].iter().copied());
            }
        }
    }
    out
}

/// The committed seeds of a fuzz target, in name order.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    paths.sort();
    let seeds: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// Feeds `entry` the seeds of `target` and `mutations` mutations of them; a
/// panic fails the test with the input that caused it.
fn holds(target: &str, entry: fn(&[u8]), mutations: usize) {
    let seeds = seeds(target);
    let mut rng = Rng::for_name(target);
    let mutated = (0..mutations).map(|_| mutate(&mut rng, &seeds));
    for input in seeds.clone().into_iter().chain(mutated) {
        if std::panic::catch_unwind(|| entry(&input)).is_err() {
            panic!(
                "{target} panicked on the input b\"{}\"",
                input.escape_ascii()
            );
        }
    }
}

// Rule: request heads, pipelined, with bodies skipped by their framing, never panic the parser.
#[test]
fn request_heads_never_panic() {
    holds("request_head", entry_points::request_head, 5000);
}

// Rule: chunked bodies fed in pieces never panic the decoder, and encoding round-trips.
#[test]
fn chunked_bodies_never_panic() {
    holds("chunked", entry_points::chunked, 5000);
}

// Rule: a back end's response heads never panic the proxy's parser.
#[test]
fn response_heads_never_panic() {
    holds("response_head", entry_points::response_head, 5000);
}

// Rule: query strings, percent-escapes and path escapes never panic their helpers.
#[test]
fn query_strings_never_panic() {
    holds("query", entry_points::query, 5000);
}

// Rule: tokens, raw or signed with the right key around any header and claims, never panic verification.
#[test]
fn jwt_tokens_never_panic() {
    holds("jwt", entry_points::jwt, 3000);
}

// Rule: config text never panics parsing, validation or snapshot compilation.
#[test]
fn config_text_never_panics() {
    holds("config", entry_points::config, 1500);
}

// Rule: CIDR lists never panic parsing, and every address an entry names is in the set.
#[test]
fn cidr_lists_never_panic() {
    holds("cidr", entry_points::cidr, 5000);
}

// Rule: a quota count file of any content is read back, seeded and counted without a panic.
#[test]
fn quota_state_files_never_panic() {
    holds("quota_state", entry_points::quota_state, 500);
}

/// Mutated request heads the gateway is sent over real sockets.
const SOCKET_CASES: usize = 300;

// Rule: a running gateway sent a few hundred mutated request heads (each on its own connection,
// then end of input) keeps serving: a valid request afterwards gets 200.
#[test]
fn gateway_keeps_serving_after_mutated_request_heads() {
    let upstream = RecordingUpstream::ok();
    let mut gateway = start_standard(&upstream, "");
    // The fuzz seeds start with a knob byte that picks parser limits: not part of the request.
    let heads: Vec<Vec<u8>> = seeds("request_head")
        .into_iter()
        .map(|seed| seed[1..].to_vec())
        .collect();
    let mut rng = Rng::for_name("gateway");
    for _ in 0..SOCKET_CASES {
        let head = mutate(&mut rng, &heads);
        let mut client = gateway.connect();
        client.set_read_timeout(Duration::from_secs(5));
        let _ = client.try_send(&head);
        let _ = client.stream.shutdown(Shutdown::Write);
        // Whatever the answer, read until the gateway closes.
        let _ = client.stream.read_to_end(&mut Vec::new());
    }
    assert!(
        gateway.wait_exit(Duration::ZERO).is_none(),
        "the gateway exited"
    );
    let mut client = gateway.connect();
    client.send("GET /api/hello HTTP/1.1\r\nHost: gw.test\r\n\r\n");
    assert_eq!(client.read_response().status, 200);
}
