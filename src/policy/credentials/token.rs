//! OAuth2 client-credentials tokens for back ends (RFC 6749 §4.4): fetched
//! by a background thread of the node, cached, and renewed before they
//! expire; the request path only reads the cached token through an
//! `ArcSwap` and never waits for a fetch.
//!
//! Why one fetcher per node rather than per worker: one token serves every
//! core, so the token endpoint sees one client and one fetch per renewal
//! however many cores run; a blocking HTTP call on its own thread costs the
//! workers nothing (they never wait on it), as for remote JWKS
//! ([`crate::policy::auth::remote_jwks`]).
//!
//! Renewal: a token that lives `L` seconds is renewed at
//! `L - min(renew_before, L / 5)`; a failed fetch is retried every
//! [`RETRY_AFTER_FAILURE`] while the old token stays in use until it
//! expires. A 401 from the back end asks for one renewal of the token it was
//! given ([`TokenSource::renew_after_unauthorized`]), no sooner than
//! [`MIN_EARLY_RENEWAL`] after the last fetch, so a back end that refuses
//! every token cannot turn into a flood of fetches.
//!
//! Snapshots that name the same endpoint, client, secret, scope and audience
//! share one fetcher, so a reload does not refetch; a changed secret (a file
//! secret re-read at reload) makes a new one. The thread ends once no
//! snapshot has held its source for [`UNUSED_GRACE`]. The first fetch of a new fetcher is awaited
//! by the compiling thread (main or control thread, never a worker) for at
//! most [`FETCH_TIMEOUT`], so the first requests find a token.
//!
//! The client authenticates with HTTP Basic (RFC 6749 §2.3.1: id and secret
//! form-encoded, then base64). The secret and the tokens never reach a log:
//! the log names the token URL and the token's generation.

use crate::config::Secret;
use arc_swap::ArcSwapOption;
use base64::Engine;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Wait before retrying a failed fetch.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);
/// Shortest time between a fetch and a renewal asked for by a 401.
pub const MIN_EARLY_RENEWAL: Duration = Duration::from_millis(500);
/// Longest wait for one fetch.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Lifetime assumed when the endpoint gives no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);
/// Largest token answer accepted.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// How often the fetcher looks for a renewal request or its end.
const POLL: Duration = Duration::from_millis(20);

/// What identifies a fetcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub renew_before: Duration,
}

/// One fetched token.
pub struct Token {
    /// `Authorization: Bearer <token>\r\n`.
    field: Secret,
    /// 1 for the first token of a fetcher, +1 per fetch.
    pub generation: u64,
    pub expires_at: Instant,
}

impl Token {
    /// The field line that carries it.
    pub fn field(&self) -> &[u8] {
        self.field.expose().as_bytes()
    }
}

/// The cached token of one endpoint and client.
pub struct TokenSource {
    pub spec: TokenSpec,
    current: ArcSwapOption<Token>,
    /// The generation a 401 asked to replace (0: none).
    renew_wanted: AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenSource({} client {})",
            self.spec.token_url, self.spec.client_id
        )
    }
}

impl TokenSource {
    /// The token to send now: `Err` when none was fetched or it expired.
    pub fn current(&self) -> Result<Arc<Token>, &'static str> {
        match self.current.load_full() {
            None => Err("no back-end token fetched yet"),
            Some(token) if Instant::now() >= token.expires_at => Err("back-end token expired"),
            Some(token) => Ok(token),
        }
    }

    /// A back end refused the current token: ask for one renewal of it.
    pub fn renew_after_unauthorized(&self) {
        if let Some(token) = self.current.load().as_ref() {
            self.renew_wanted
                .fetch_max(token.generation, Ordering::Relaxed);
        }
    }
}

/// Every running fetcher's source. Held strongly, so that a snapshot
/// compiled and dropped at once (the start-up plan's, a rejected reload's)
/// does not end a fetcher the next compile needs; a source no snapshot has
/// held for [`UNUSED_GRACE`] is removed and its thread ends.
static SOURCES: Mutex<Vec<Arc<TokenSource>>> = Mutex::new(Vec::new());

/// How long a fetcher runs on with no snapshot holding its source.
pub const UNUSED_GRACE: Duration = Duration::from_secs(30);

/// Checks a token URL: `https://`, or `http://` to a loopback host.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err("must be an https:// URL".into());
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, _)) if !authority.ends_with(']') => h,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err("must be an https:// URL (http:// only to a loopback address)".into())
    }
}

/// The shared fetcher for `spec`, started (and its first fetch awaited) if
/// none is running. A failed first fetch is a warning, not an error: the
/// fetcher keeps trying and requests get 502 meanwhile.
pub fn source(spec: TokenSpec, warnings: &mut Vec<String>) -> Result<Arc<TokenSource>, String> {
    let mut sources = SOURCES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = sources.iter().find(|s| s.spec == spec) {
        return Ok(existing.clone());
    }
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(FETCH_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent();
    let source = Arc::new(TokenSource {
        spec,
        current: ArcSwapOption::empty(),
        renew_wanted: AtomicU64::new(0),
    });
    sources.push(source.clone());
    drop(sources);
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let weak = Arc::downgrade(&source);
    std::thread::Builder::new()
        .name("portcullis-token".into())
        .spawn(move || renew_loop(weak, agent, first_tx))
        .map_err(|e| format!("cannot start the token fetcher: {e}"))?;
    match first_rx.recv_timeout(FETCH_TIMEOUT + Duration::from_secs(1)) {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warnings.push(format!(
            "the first token fetch from {} failed ({error}); requests to its back ends get 502 until a fetch succeeds",
            source.spec.token_url
        )),
        Err(_) => warnings.push(format!(
            "the first token fetch from {} did not finish in time",
            source.spec.token_url
        )),
    }
    Ok(source)
}

fn renew_loop(
    source: Weak<TokenSource>,
    agent: ureq::Agent,
    first: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let mut first = Some(first);
    let mut generation = 0;
    let mut unused_since: Option<Instant> = None;
    loop {
        let Some(strong) = source.upgrade() else {
            return;
        };
        let fetched_at = Instant::now();
        let wait = match fetch(&agent, &strong.spec) {
            Ok((value, lifetime)) => {
                generation += 1;
                strong.current.store(Some(Arc::new(Token {
                    field: Secret::new(format!("Authorization: Bearer {value}\r\n")),
                    generation,
                    expires_at: fetched_at + lifetime,
                })));
                info!(
                    token_url = %strong.spec.token_url,
                    generation,
                    expires_in = lifetime.as_secs_f64(),
                    "back-end token fetched"
                );
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                lifetime - strong.spec.renew_before.min(lifetime / 5)
            }
            Err(error) => {
                warn!(token_url = %strong.spec.token_url, %error, "back-end token fetch failed");
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(error));
                }
                RETRY_AFTER_FAILURE
            }
        };
        drop(strong);
        let until = fetched_at + wait;
        while Instant::now() < until {
            let Some(strong) = source.upgrade() else {
                return;
            };
            // The registry's and this one: no snapshot holds it.
            if Arc::strong_count(&strong) <= 2 {
                let since = *unused_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= UNUSED_GRACE && retire(&strong) {
                    return;
                }
            } else {
                unused_since = None;
            }
            let wanted = strong.renew_wanted.load(Ordering::Relaxed);
            drop(strong);
            if generation > 0 && wanted >= generation && fetched_at.elapsed() >= MIN_EARLY_RENEWAL {
                info!("back-end token refused by its back end; renewing");
                break;
            }
            std::thread::sleep(POLL);
        }
    }
}

/// Removes `source` from the registry if still no snapshot holds it.
fn retire(source: &Arc<TokenSource>) -> bool {
    let mut sources = SOURCES.lock().unwrap_or_else(|p| p.into_inner());
    if Arc::strong_count(source) > 2 {
        return false;
    }
    sources.retain(|s| !Arc::ptr_eq(s, source));
    info!(token_url = %source.spec.token_url, "back-end token fetcher ended: no configuration uses it");
    true
}

/// One token request: `(access_token, lifetime)`. Errors never carry the
/// secret or the answer's body.
fn fetch(agent: &ureq::Agent, spec: &TokenSpec) -> Result<(String, Duration), String> {
    let credentials = format!(
        "{}:{}",
        form_encode(&spec.client_id),
        form_encode(spec.client_secret.expose())
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    );
    let mut body = String::from("grant_type=client_credentials");
    for (name, value) in [("scope", &spec.scope), ("audience", &spec.audience)] {
        if let Some(value) = value {
            body.push_str(&format!("&{name}={}", form_encode(value)));
        }
    }
    let mut response = agent
        .post(&spec.token_url)
        .header("Authorization", &basic)
        .header("Accept", "application/json")
        .content_type("application/x-www-form-urlencoded")
        .send(body.as_str())
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(format!("the token endpoint answered {status}"));
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| format!("reading the answer: {e}"))?;
    parse_answer(&text)
}

/// Reads a token answer (RFC 6749 §5.1).
pub fn parse_answer(text: &str) -> Result<(String, Duration), String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|_| "the answer is not JSON".to_string())?;
    let token = json
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or("the answer has no access_token")?;
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the access_token holds characters a header cannot".into());
    }
    match json.get("token_type").and_then(|t| t.as_str()) {
        Some(kind) if !kind.eq_ignore_ascii_case("bearer") => {
            return Err(format!("token_type `{kind}` is not bearer"))
        }
        _ => {}
    }
    let lifetime = match json.get("expires_in") {
        None => DEFAULT_LIFETIME,
        Some(v) => v
            .as_f64()
            .filter(|s| *s >= 1.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or("expires_in is not a positive number of seconds")?,
    };
    Ok((token.to_string(), lifetime))
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // A token answer needs an access_token; bearer type and lifetime are read.
    #[test]
    fn token_answers() {
        assert_eq!(
            [
                parse_answer(r#"{"access_token":"a","token_type":"Bearer","expires_in":30}"#),
                parse_answer(r#"{"access_token":"a"}"#),
                parse_answer(r#"{"access_token":"a","token_type":"mac"}"#),
                parse_answer(r#"{"token_type":"bearer"}"#),
            ]
            .map(|r| r.map(|(t, l)| (t, l.as_secs())).is_ok()),
            [true, true, false, false]
        );
    }

    // Client id and secret are form-encoded before Basic (RFC 6749 §2.3.1).
    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b:c/ü"), "a+b%3Ac%2F%C3%BC");
    }

    // Token URLs: https, or http to loopback only.
    #[test]
    fn token_urls() {
        assert_eq!(
            [
                "https://idcs.example/t",
                "http://127.0.0.1:9/t",
                "http://[::1]:9/t",
                "http://idcs.example/t"
            ]
            .map(|u| check_url(u).is_ok()),
            [true, true, true, false]
        );
    }
}
