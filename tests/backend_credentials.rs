//! Back-end credentials over real sockets: the back end receives the
//! gateway's Basic credentials or OAuth2 token and never the client's; a
//! token is fetched once and reused, renewed before it expires and once after
//! a 401; a failed fetch answers 502 with its reason code in the access log;
//! a changed file secret takes effect at reload. The token endpoint is a
//! recording server started by the test, with a count of what it received.

mod common;

use base64::Engine;
use common::*;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const CLIENT_BASIC: &str = "Basic Y2xpZW50OmNsaWVudC1wYXNz";

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn gateway(up: &RecordingUpstream, credentials: &str) -> Gateway {
    Gateway::start(&format!(
        r#"
[access_log]
path = "stdout"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "oic"
listener = "public"
path_prefix = "/oic"

[[deployments.routes]]
path = "/flow"
backend = {{ type = "http", url = "http://{}/ic/api/flow", credentials = {credentials} }}
"#,
        up.addr()
    ))
}

fn call(gw: &Gateway, authorization: Option<&str>) -> Response {
    let field = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    request(
        gw.addr(),
        format!("GET /oic/flow HTTP/1.1\r\nHost: gw.test\r\n{field}\r\n"),
    )
}

/// A token endpoint answering `tok-N` for its N-th request, living `expires_in` seconds.
fn token_server(expires_in: u64) -> RecordingUpstream {
    let issued = Arc::new(AtomicUsize::new(0));
    RecordingUpstream::start(move |_| {
        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
        let body = format!(
            r#"{{"access_token":"tok-{n}","token_type":"Bearer","expires_in":{expires_in}}}"#
        );
        Reply::raw(format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    })
}

fn oauth2(tokens: &RecordingUpstream, secret: &str) -> String {
    format!(
        r#"{{ type = "oauth2_client_credentials", token_url = "http://{}/oauth2/v1/token", client_id = "gw-client", client_secret = {secret}, scope = "urn:opc:resource:consumer::all" }}"#,
        tokens.addr()
    )
}

fn authorizations(up: &RecordingUpstream) -> Vec<String> {
    up.requests()
        .iter()
        .map(|r| r.header_all("authorization").join(" | "))
        .collect()
}

// Rule: with Basic credentials the back end receives the gateway's and never the client's.
#[test]
fn basic_credentials_replace_the_clients() {
    let up = RecordingUpstream::ok();
    let gw = gateway(
        &up,
        r#"{ type = "basic", user = "integration", password = "p@ss:w0rd" }"#,
    );
    assert_eq!(call(&gw, Some(CLIENT_BASIC)).status, 200);
    assert_eq!(call(&gw, None).status, 200);
    let expected = basic("integration", "p@ss:w0rd");
    assert_eq!(authorizations(&up), [expected.clone(), expected]);
    let raw = String::from_utf8_lossy(&up.raw_received()).to_string();
    assert!(!raw.contains("Y2xpZW50OmNsaWVudC1wYXNz"), "{raw}");
}

// Rule: `client_authorization = "keep"` forwards the client's field and adds the
// gateway's only when the client sent none.
#[test]
fn keep_forwards_the_clients_authorization() {
    let up = RecordingUpstream::ok();
    let gw = gateway(
        &up,
        r#"{ type = "basic", user = "integration", password = "pw", client_authorization = "keep" }"#,
    );
    assert_eq!(call(&gw, Some(CLIENT_BASIC)).status, 200);
    assert_eq!(call(&gw, None).status, 200);
    assert_eq!(
        authorizations(&up),
        [CLIENT_BASIC.to_string(), basic("integration", "pw")]
    );
}

// Rule: an OAuth2 token is fetched once (client authenticated by Basic, RFC 6749
// §2.3.1) and reused for every request; the client's credentials never pass.
#[test]
fn oauth2_token_fetched_once_and_reused() {
    let tokens = token_server(3600);
    let up = RecordingUpstream::ok();
    let gw = gateway(&up, &oauth2(&tokens, r#""s3cret value""#));
    for _ in 0..5 {
        assert_eq!(call(&gw, Some(CLIENT_BASIC)).status, 200);
    }
    assert_eq!(authorizations(&up), vec!["Bearer tok-1".to_string(); 5]);
    let fetch = tokens.only_request();
    assert_eq!(
        (
            fetch.method.as_str(),
            fetch.target.as_str(),
            fetch.header("authorization"),
            String::from_utf8_lossy(&fetch.body).to_string()
        ),
        (
            "POST",
            "/oauth2/v1/token",
            Some(basic("gw-client", "s3cret+value").as_str()),
            "grant_type=client_credentials&scope=urn%3Aopc%3Aresource%3Aconsumer%3A%3Aall"
                .to_string()
        )
    );
    assert!(!gw.log_text().contains("tok-1"), "{}", gw.log_text());
}

// Rule: a token is renewed in the background before it expires; later requests
// carry the new one.
#[test]
fn oauth2_token_renewed_before_expiry() {
    // Lives 2 s: renewed after 1.6 s (a fifth of its life before expiry).
    let tokens = token_server(2);
    let up = RecordingUpstream::ok();
    let gw = gateway(&up, &oauth2(&tokens, r#""pw""#));
    assert_eq!(call(&gw, None).status, 200);
    gw.wait_log_line("the second token", |l| {
        l.contains("back-end token fetched") && l.contains("generation=2")
    });
    assert_eq!(call(&gw, None).status, 200);
    assert_eq!(authorizations(&up), ["Bearer tok-1", "Bearer tok-2"]);
}

// Rule: a 401 from the back end renews the token once; the next request uses the new one.
#[test]
fn oauth2_token_renewed_once_after_a_401() {
    let tokens = token_server(3600);
    let up = RecordingUpstream::start(|r| {
        if r.header("authorization") == Some("Bearer tok-1") {
            Reply::status(401, "expired")
        } else {
            Reply::ok("ok")
        }
    });
    let gw = gateway(&up, &oauth2(&tokens, r#""pw""#));
    assert_eq!(call(&gw, None).status, 401);
    gw.wait_log_line("the renewed token", |l| {
        l.contains("back-end token fetched") && l.contains("generation=2")
    });
    for _ in 0..3 {
        assert_eq!(call(&gw, None).status, 200);
    }
    assert_eq!(
        authorizations(&up),
        [
            "Bearer tok-1",
            "Bearer tok-2",
            "Bearer tok-2",
            "Bearer tok-2"
        ]
    );
    assert_eq!(tokens.requests().len(), 2);
}

// Rule: when no token can be fetched the request gets 502 with the reason code in the
// access log, and the back end receives nothing.
#[test]
fn failed_token_fetch_answers_502() {
    let tokens = RecordingUpstream::start(|_| Reply::status(500, "down"));
    let up = RecordingUpstream::ok();
    let gw = gateway(&up, &oauth2(&tokens, r#""pw""#));
    assert_eq!(call(&gw, None).status, 502);
    gw.wait_log_line("the access log line", |l| {
        l.contains("httpBackend.credentialsUnavailable")
    });
    up.assert_received_nothing(gw);
}

// Rule: a password read from a file changes with the file at the next reload.
#[test]
fn file_password_changes_at_reload() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oic-password");
    let write = |p: &Path, v: &str| std::fs::write(p, format!("{v}\n")).unwrap();
    write(&file, "first");
    let up = RecordingUpstream::ok();
    let gw = gateway(
        &up,
        &format!(
            r#"{{ type = "basic", user = "integration", password = {{ file = "{}" }} }}"#,
            file.display()
        ),
    );
    assert_eq!(call(&gw, None).status, 200);
    write(&file, "second-longer");
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(gw.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    gw.wait_log_line("an applied reload", |l| l.contains("result=\"applied\""));
    assert_eq!(call(&gw, None).status, 200);
    assert_eq!(
        authorizations(&up),
        [
            basic("integration", "first"),
            basic("integration", "second-longer")
        ]
    );
}

/// A real OAuth2 provider (npm's `oauth2-mock-server`, installed by
/// `scripts/install-test-deps.sh`) on a free loopback port, ended on drop.
struct MockProvider {
    child: std::process::Child,
    port: u16,
}

impl MockProvider {
    /// Started and listening, or None when it is not installed (an error under CI=true).
    fn start() -> Option<MockProvider> {
        use std::io::{BufRead, BufReader};
        let port = unused_port();
        let spawned = Command::new("oauth2-mock-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("oauth2-mock-server is needed under CI=true: {e}")
            }
            Err(_) => {
                eprintln!(
                    "oauth2-mock-server not installed (scripts/install-test-deps.sh); skipped"
                );
                return None;
            }
        };
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = tx.send(());
                }
            }
        });
        let provider = MockProvider { child, port };
        rx.recv_timeout(EVENT_TIMEOUT)
            .expect("oauth2-mock-server did not start listening");
        Some(provider)
    }
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Rule: against a real OAuth2 provider, the gateway's client-credentials token (a
// signed JWT carrying the scope asked for) reaches the back end.
#[test]
fn oauth2_against_a_real_token_server() {
    let Some(provider) = MockProvider::start() else {
        return;
    };
    let up = RecordingUpstream::ok();
    let gw = gateway(
        &up,
        &format!(
            r#"{{ type = "oauth2_client_credentials", token_url = "http://127.0.0.1:{}/token", client_id = "gw-client", client_secret = "pw", scope = "orders:write" }}"#,
            provider.port
        ),
    );
    assert_eq!(call(&gw, Some(CLIENT_BASIC)).status, 200);
    assert_eq!(call(&gw, None).status, 200);
    let seen = authorizations(&up);
    assert_eq!(seen[0], seen[1]);
    let token = seen[0].strip_prefix("Bearer ").expect("a bearer token");
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["scope"], "orders:write");
}
