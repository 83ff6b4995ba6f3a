//! One function per parser of untrusted input, each taking arbitrary bytes and
//! driving the gateway's real entry point the way the gateway does. None may
//! panic, whatever the bytes; where the parser makes a promise a caller relies
//! on (a range inside its input, an address inside a set it was built from),
//! the promise is asserted too.
//!
//! Shared by the cargo-fuzz targets (`fuzz/fuzz_targets/*.rs`, nightly) and the
//! stable test `tests/no_panic_inputs.rs`, which includes this file by path.
//! Where one leading byte of the input picks a variant (limits, a split
//! size, a token form), it is called the knob.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use portcullis::config::parse_str;
use portcullis::http::chunked::{encode_chunk, ChunkedDecoder, LAST_CHUNK};
use portcullis::http::path::decode_unreserved;
use portcullis::http::query::{percent_decode, query_value};
use portcullis::http::request::{header_storage, parse_request, HeadLimits, Parsed};
use portcullis::http::response::{parse_response, response_header_storage, ParsedResponse};
use portcullis::http::BodyFraming;
use portcullis::net::cidr::CidrSet;
use portcullis::net::peer::Peer;
use portcullis::policy::auth::claims::ClaimChecks;
use portcullis::policy::auth::jwt::{KeySource, Verifier};
use portcullis::policy::auth::keys::KeySet;
use portcullis::policy::usage::{
    LocalShares, QuotaHandover, QuotaStore, RequestTally, UsageRegistry,
};
use portcullis::runtime::dispatch::{plan_request, Context};
use portcullis::service::state::StateHandover;
use portcullis::snapshot::Snapshot;
use portcullis::telemetry::counters::StatsRegistry;
use portcullis::telemetry::record::RequestIds;
use portcullis::time::clock::Now;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The wall clock every time-dependent check runs at (2026-09-21 UTC), so a
/// run does not depend on the day it happens.
pub const NOW: u64 = 1_790_000_000;

/// Most pipelined request heads parsed from one input.
const MAX_PIPELINED: usize = 8;

/// Request heads, one after another as a keep-alive connection reads them:
/// each parsed and planned by the dispatcher against [`DISPATCH_CONFIG`]
/// (routing, network rules, CORS, authentication, usage plans, header
/// transformations, the access-log fields), then its body skipped by its
/// framing (chunked bodies through the decoder).
pub fn request_head(data: &[u8]) {
    let Some((&knob, mut rest)) = data.split_first() else {
        return;
    };
    let limits = if knob & 1 == 0 {
        HeadLimits {
            max_head_bytes: 8192,
            max_uri_bytes: 4096,
            max_headers: 100,
        }
    } else {
        // Small limits reach the 414 and 431 paths with short inputs.
        HeadLimits {
            max_head_bytes: 16 + usize::from(knob),
            max_uri_bytes: usize::from(knob >> 2),
            max_headers: usize::from(knob >> 4),
        }
    };
    for _ in 0..MAX_PIPELINED {
        plan(rest, knob & 2 == 2);
        let mut storage = header_storage();
        let next = match parse_request(rest, &limits, &mut storage) {
            Ok(Parsed::Complete(head)) => {
                assert!(head.len > 0 && head.len <= rest.len(), "head length");
                let _ = decode_unreserved(head.path);
                let _ = (head.is_idempotent(), head.is_head(), head.host, head.query);
                let body = &rest[head.len..];
                match head.body {
                    BodyFraming::None => head.len,
                    BodyFraming::Length(n) => {
                        head.len + usize::try_from(n).unwrap_or(usize::MAX).min(body.len())
                    }
                    BodyFraming::Chunked => match decode_chunked(body, body.len().max(1)) {
                        Some(consumed) => head.len + consumed,
                        None => return,
                    },
                    BodyFraming::UntilClose => return,
                }
            }
            Ok(Parsed::Partial) => return,
            Err(e) => {
                let _ = (e.status(), e.to_string());
                return;
            }
        };
        rest = &rest[next..];
    }
}

/// A gateway with every request-time policy: trusted proxies, network rules,
/// CORS, JWT authentication (anonymous allowed), header transformations with
/// every kind of template variable, usage plans with header and query tokens,
/// a per-address rate limit, stock and forwarded routes with parameters.
const DISPATCH_CONFIG: &str = r#"
[[listeners]]
name = "public"
address = "127.0.0.1:8080"
trusted_proxies = ["127.0.0.0/8", "::1"]
security_headers = { content_type_options = true, remove_server_headers = true }

[[deployments]]
name = "orders"
listener = "public"
path_prefix = "/orders"
network = { deny = ["192.0.2.0/24", "2001:db8::/32"] }

[deployments.cors]
allowed_origins = ["https://app.example.com"]
allowed_methods = ["GET", "POST"]
allowed_headers = ["Authorization", "Content-Type"]
exposed_headers = ["X-Request-Id"]
max_age_in_seconds = 600

[deployments.authentication]
type = "jwt"
issuers = ["https://issuer.example"]
audiences = ["orders"]
verify_claims = [{ key = "tenant", values = ["acme"] }]
is_anonymous_access_allowed = true
public_keys = { type = "static_keys", keys = [{ kid = "hs", format = "json_web_key", kty = "oct", k = "cG9ydGN1bGxpcy1mdXp6aW5nLXNlY3JldC0zMi1ieXRl", alg = "HS256" }] }

[[deployments.routes]]
path = "/v1/{id}/items/{rest*}"
backend = { type = "http", url = "http://127.0.0.1:9/api/{id}/{rest*}?fixed=1" }
request_headers = { set = [
  { name = "X-Caller", value = "${request.auth[sub]}" },
  { name = "X-Order", value = "id=${request.path[id]};q=${request.query[q]};h=${request.headers[x-tenant]}" },
], remove = ["Cookie"] }
response_headers = { rename = [{ from = "X-Internal-Id", to = "X-Order-Ref" }], remove = ["X-Debug"] }

[[deployments.routes]]
path = "/v1/health"
methods = ["GET", "HEAD"]
authorization = "anonymous"
backend = { type = "stock", status = 200, headers = { "Content-Type" = "text/plain" }, body = "ok" }

[[deployments.routes]]
path = "/v1/secret"
authorization = { any_of = ["orders:read"] }
backend = { type = "stock", status = 200, body = "secret" }

[[deployments]]
name = "plans"
listener = "public"
path_prefix = "/plans"
usage_plans = { token_locations = ["header:X-Client-Token", "query:api_key"], reject_status = 401 }
rate_limit = { requests_per_second = 1000, key = "client_ip" }

[[deployments.routes]]
path = "/files/*"
backend = { type = "http", url = "http://[::1]:9/store" }
request_headers = { set = [{ name = "X-Subscriber", value = "${subscriber.name}" }] }

[[usage_plans]]
name = "gold"

[[usage_plans.entitlements]]
name = "plans"
deployments = ["plans"]
rate_limit = { requests_per_second = 50, burst = 10 }
quota = { limit = 1000, period = "day", on_breach = "allow" }

[[subscribers]]
name = "acme"
usage_plans = ["gold"]
clients = [{ name = "prod", token = "acme-prod-demo-token-0001" }]
"#;

thread_local! {
    static DISPATCH: Snapshot = dispatch_snapshot();
}

fn dispatch_snapshot() -> Snapshot {
    let file = Path::new("/nonexistent/gateway.toml");
    let config = parse_str(DISPATCH_CONFIG, file).expect("the dispatch config parses");
    let mut snapshot =
        Snapshot::compile(&config, DISPATCH_CONFIG, file).expect("the dispatch config compiles");
    snapshot.attach_stats(&StatsRegistry::new(1));
    snapshot
}

/// Plans the request at the start of `pending` as a worker does, for a
/// client on loopback (a trusted proxy) while serving or draining.
fn plan(pending: &[u8], draining: bool) {
    DISPATCH.with(|snapshot| {
        let peer = Peer::new(SocketAddr::from(([127, 0, 0, 1], 40000)));
        let (ids, limits) = (RequestIds::new(7), LocalShares::default());
        let tally = RequestTally::default();
        let cx = Context {
            snapshot,
            peer: &peer,
            listener: 0,
            draining,
            ids: &ids,
            limits: &limits,
            tally: &tally,
        };
        let (mut out, mut log) = (Vec::new(), Vec::new());
        let _ = plan_request(&cx, pending, &mut out, Some(&mut log));
    });
}

/// A chunked body fed in pieces of a size the knob picks, the unconsumed
/// bytes presented again each time as the proxy does; then the input itself
/// encoded as one chunk must decode back to itself.
pub fn chunked(data: &[u8]) {
    let Some((&knob, body)) = data.split_first() else {
        return;
    };
    decode_chunked(body, usize::from(knob).max(1));
    let mut wire = Vec::new();
    encode_chunk(&mut wire, body);
    wire.extend_from_slice(LAST_CHUNK);
    let mut decoder = ChunkedDecoder::new();
    let mut decoded = Vec::new();
    let mut at = 0;
    while !decoder.is_done() {
        let found = decoder
            .decode(&wire[at..])
            .expect("an encoded chunk decodes");
        assert!(found.consumed > 0, "an encoded body decodes to its end");
        if let Some(range) = found.data {
            decoded.extend_from_slice(&wire[at..][range]);
        }
        at += found.consumed;
    }
    assert_eq!(decoded, body, "encode then decode round-trips");
}

/// Decodes `body` fed `step` bytes at a time; the bytes the decoder consumed
/// when it finished, `None` on an error or when the body did not end.
fn decode_chunked(body: &[u8], step: usize) -> Option<usize> {
    let mut decoder = ChunkedDecoder::new();
    let (mut pending, mut consumed) = (Vec::new(), 0);
    for piece in body.chunks(step) {
        pending.extend_from_slice(piece);
        loop {
            let found = decoder.decode(&pending).ok()?;
            assert!(found.consumed <= pending.len(), "consumed inside the input");
            if let Some(range) = &found.data {
                assert!(range.start <= range.end && range.end <= found.consumed);
            }
            if found.done {
                return Some(consumed + found.consumed);
            }
            if found.consumed == 0 {
                break;
            }
            pending.drain(..found.consumed);
            consumed += found.consumed;
        }
    }
    let _ = decoder.body_bytes();
    None
}

/// A back end's response heads, interim ones skipped as the proxy does; the
/// knob says whether the request was HEAD.
pub fn response_head(data: &[u8]) {
    let Some((&knob, mut rest)) = data.split_first() else {
        return;
    };
    for _ in 0..MAX_PIPELINED {
        let mut storage = response_header_storage();
        match parse_response(rest, knob & 1 == 1, &mut storage) {
            Ok(ParsedResponse::Interim(len)) => {
                assert!(len > 0 && len <= rest.len(), "interim head length");
                rest = &rest[len..];
            }
            Ok(ParsedResponse::Final(head)) => {
                assert!(head.len > 0 && head.len <= rest.len(), "head length");
                let _ = (head.status, head.reason, head.body, head.close);
                return;
            }
            Ok(ParsedResponse::Partial) => return,
            Err(e) => {
                let _ = e.to_string();
                return;
            }
        }
    }
}

/// A query string and a parameter name (after the first newline, else
/// `api_key`): the value looked up and percent-decoded; the whole input
/// percent-decoded, and decoded as a path's unreserved escapes.
pub fn query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (query, name) = text.split_once('\n').unwrap_or((&text, "api_key"));
    if let Some(value) = query_value(query, name) {
        assert!(percent_decode(value).len() <= value.len());
    }
    assert!(percent_decode(data).len() <= data.len());
    if let Some(decoded) = decode_unreserved(&text) {
        assert!(decoded.len() <= text.len());
    }
}

/// The HMAC secret of the fixed key `hs`.
const HS_SECRET: &[u8] = b"portcullis-fuzzing-secret-32-byte";

/// The fixed keys: `hs` (HS256) and the EC key of the example deployment.
const JWKS_TEMPLATE: &str = r#"{"keys":[
  {"kty":"oct","kid":"hs","alg":"HS256","k":"SECRET"},
  {"kty":"EC","kid":"orders-2026","use":"sig","crv":"P-256",
   "x":"uI5c5qqZ4ErO9hsPHvSiaZ206vH_kbm2OMhJjLaswC0",
   "y":"1e0uVRmkvfD4VmmQQq5Fday5w7Zeg_yYIeUOvGoORw0"}]}"#;

fn fixed_verifier() -> Verifier {
    let mut keys = KeySet::default();
    let jwks = JWKS_TEMPLATE.replace("SECRET", &URL_SAFE_NO_PAD.encode(HS_SECRET));
    keys.add_jwks(&jwks).expect("the fixed JWKS is valid");
    Verifier {
        keys: KeySource::Static(keys),
        checks: ClaimChecks {
            issuers: vec!["https://issuer.example".into()],
            audiences: vec!["orders".into()],
            skew: 30,
            rules: vec![],
        },
    }
}

thread_local! {
    static VERIFIER: Verifier = fixed_verifier();
}

/// A token against fixed keys. Knob 0: the bytes are the token. Knob 1: the
/// bytes are the claims, under a fixed `hs` header, signed with the right
/// secret (so the claim checks see them). Knob 2: the bytes up to the first
/// newline are the header, the rest the claims, signed with the right secret.
pub fn jwt(data: &[u8]) {
    let Some((&knob, bytes)) = data.split_first() else {
        return;
    };
    let token = match knob % 3 {
        0 => String::from_utf8_lossy(bytes).into_owned(),
        1 => signed(br#"{"alg":"HS256","typ":"JWT","kid":"hs"}"#, bytes),
        _ => {
            let at = bytes
                .iter()
                .position(|&b| b == b'\n')
                .unwrap_or(bytes.len());
            signed(&bytes[..at], bytes.get(at + 1..).unwrap_or_default())
        }
    };
    VERIFIER.with(|verifier| {
        if let Ok(claims) = verifier.verify(&token, NOW) {
            let _ = (
                claims.subject(),
                claims.has_scope("read"),
                claims.text("sub"),
            );
        }
    });
}

/// `header.claims.signature` with an HS256 signature made with the `hs` secret.
fn signed(header: &[u8], claims: &[u8]) -> String {
    let message = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let key = jsonwebtoken::EncodingKey::from_secret(HS_SECRET).unwrap();
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .expect("HS256 signing cannot fail");
    format!("{message}.{signature}")
}

thread_local! {
    /// A directory for the config's relative paths and the quota state file.
    static SCRATCH: tempfile::TempDir = tempfile::tempdir().expect("a temporary directory");
}

fn scratch_path() -> PathBuf {
    SCRATCH.with(|dir| dir.path().to_path_buf())
}

/// Config text parsed, validated and compiled into a snapshot, as `check`
/// and a reload do (no sockets are bound). Text that names `remote_jwks` is
/// skipped: compiling it starts a fetcher thread that goes to the network.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("remote_jwks") {
        return;
    }
    let file = scratch_path().join("gateway.toml");
    if let Ok(config) = parse_str(text, &file) {
        match Snapshot::compile(&config, text, &file) {
            Ok(snapshot) => {
                let _ = (snapshot.has_quotas(), snapshot.inventory());
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// CIDR entries, one a line; every address an entry names must then be in
/// the set, and a few addresses made of the input's bytes are looked up.
pub fn cidr(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let entries: Vec<&str> = text.split('\n').collect();
    let Ok(set) = CidrSet::parse(&entries) else {
        return;
    };
    for entry in &entries {
        let address = entry.split('/').next().unwrap_or(entry);
        let ip: IpAddr = address.parse().expect("a parsed entry names an address");
        assert!(set.contains(ip), "`{entry}` is in its own set");
    }
    for window in data.chunks(16) {
        let mut octets = [0u8; 16];
        octets[..window.len()].copy_from_slice(window);
        let v4 = Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]);
        let _ = set.contains(IpAddr::V4(v4));
        let _ = set.contains(IpAddr::V6(Ipv6Addr::from(octets)));
        let _ = set.contains(IpAddr::V6(v4.to_ipv6_mapped()));
    }
    let _ = (set.ranges(), set.is_empty());
}

/// A gateway with one subscriber whose plan has a daily and a per-minute
/// quota, and a `state_dir` beside it.
const QUOTA_CONFIG: &str = r#"
state_dir = "state"

[[listeners]]
name = "public"
address = "127.0.0.1:8080"

[[deployments]]
name = "orders"
listener = "public"
path_prefix = "/orders"
usage_plans = { token_locations = ["header:X-Client-Token"] }

[[deployments.routes]]
path = "/status"
methods = ["GET"]
backend = { type = "stock", status = 200, body = "ok" }

[[deployments]]
name = "reports"
listener = "public"
path_prefix = "/reports"
usage_plans = { token_locations = ["header:X-Client-Token"] }

[[deployments.routes]]
path = "/daily"
methods = ["GET"]
backend = { type = "stock", status = 200, body = "ok" }

[[usage_plans]]
name = "gold"

[[usage_plans.entitlements]]
name = "orders"
deployments = ["orders"]
quota = { limit = 100, period = "day" }

[[usage_plans.entitlements]]
name = "reports"
deployments = ["reports"]
quota = { limit = 5, period = "minute", on_breach = "allow" }

[[subscribers]]
name = "acme"
usage_plans = ["gold"]
clients = [{ name = "prod", token = "acme-prod-demo-token-0001" }]
"#;

/// Quota counts as a new process takes them in: the bytes as the count file
/// `state_dir` holds, read back at start and seeded into the usage registry,
/// and as the blobs a predecessor sends at a takeover (its counts, then its
/// drain delta: once before the counters exist, once after). One JSON
/// document can be both, having `counters` and `counts`. Then the counters
/// are attached to a snapshot with quotas and counted against at [`NOW`], and
/// the counts written again and read back.
pub fn quota_state(data: &[u8]) {
    let dir = scratch_path();
    let store = QuotaStore::open(&dir.join("state")).expect("the state directory opens");
    if std::fs::write(store.path(), data).is_err() {
        return;
    }
    let registry = Arc::new(UsageRegistry::default());
    registry.seed(store.load().counts);
    let handover = QuotaHandover::new(Arc::clone(&registry));
    let _ = handover.import_at_handover(data);
    let _ = handover.import_after_drain(data);
    let mut snapshot = quota_snapshot(&dir);
    let now = NOW as i64;
    let at = Now {
        mono_ns: 1,
        unix_secs: now,
    };
    snapshot.attach_usage(&registry, at);
    let _ = handover.import_after_drain(data);
    let usage = &snapshot.usage;
    for subscriber in &usage.subscribers {
        for grant in &subscriber.grants {
            let plan = &usage.plans[grant.plan as usize];
            let entitlement = &plan.entitlements[grant.entitlement as usize];
            if let (Some(counter), Some(params)) = (&grant.quota, &entitlement.quota) {
                let _ = counter.count(params, now);
                let _ = counter.used(params.period, now);
            }
        }
    }
    let counts = registry.quota_counts(now);
    store.save(&counts, now).expect("the counts are written");
    assert_eq!(
        store.load().counts,
        counts,
        "written counts read back unchanged"
    );
}

fn quota_snapshot(dir: &Path) -> Snapshot {
    let file = dir.join("gateway.toml");
    let config = parse_str(QUOTA_CONFIG, &file).expect("the quota config parses");
    Snapshot::compile(&config, QUOTA_CONFIG, &file).expect("the quota config compiles")
}
