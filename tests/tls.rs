//! TLS end to end, with certificates the tests generate: HTTPS clients in
//! front (SNI, ALPN, client certificates, rotation on disk, garbage
//! handshakes) and HTTPS back ends behind (a test CA, an unknown CA, no
//! verification, a client certificate the back end requires).

mod common;
#[path = "support/tls.rs"]
mod support;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

/// A TLS listener `secure` in front of `routes` (TOML `[[deployments.routes]]`
/// entries of deployment `api` at `/api`), with `tls_extra` inside its `tls` table.
fn tls_gateway_config(certs: &[&Issued], tls_extra: &str, routes: &str, prelude: &str) -> String {
    let certificates: Vec<String> = certs
        .iter()
        .map(|c| {
            format!(
                "{{ cert = \"{}\", key = \"{}\" }}",
                toml_path(&c.cert),
                toml_path(&c.key)
            )
        })
        .collect();
    format!(
        r#"{prelude}
[[listeners]]
name = "secure"
address = "127.0.0.1:0"
tls = {{ certificates = [{}]{tls_extra} }}

[[deployments]]
name = "api"
listener = "secure"
path_prefix = "/api"

[[deployments.routes]]
path = "/hello"
backend = {{ type = "stock", status = 200, body = "hi\n" }}
{routes}
"#,
        certificates.join(", ")
    )
}

/// A plain listener `public` in front of one route `/up` to `backend` (a TOML inline table).
fn plain_gateway_config(backend: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[deployments]]
name = "api"
listener = "public"
path_prefix = "/api"

[[deployments.routes]]
path = "/up"
backend = {backend}
"#
    )
}

fn https_get(addr: SocketAddr, name: &str, pki: &Pki, path: &str) -> SimpleResponse {
    let mut client = TlsClient::connect(addr, name, client_config(pki.roots(), None))
        .unwrap_or_else(|e| panic!("TLS connect: {e}"));
    client.get(path).unwrap()
}

// An HTTPS client reaches a plain back end through a TLS listener; the back end
// learns the client used https, and the client negotiated http/1.1.
#[test]
fn https_client_to_http_backend() {
    let pki = Pki::new("front");
    let cert = pki.issue("gw", "gateway", &["localhost", "127.0.0.1"]);
    let upstream = RecordingUpstream::ok();
    let routes = format!(
        "[[deployments.routes]]\npath = \"/up\"\nbackend = {{ type = \"http\", url = \"http://{}/up\" }}\n",
        upstream.addr()
    );
    let gw = Gateway::start(&tls_gateway_config(&[&cert], "", &routes, ""));
    let mut client = TlsClient::connect(gw.addr(), "localhost", client_config(pki.roots(), None))
        .expect("handshake");
    assert_eq!(client.alpn().as_deref(), Some(&b"http/1.1"[..]));
    let first = client.get("/api/up").unwrap();
    let second = client.get("/api/hello").unwrap();
    assert_eq!((first.status, first.text()), (200, "ok".to_string()));
    assert_eq!((second.status, second.text()), (200, "hi\n".to_string()));
    let seen = upstream.only_request();
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert!(seen.header("forwarded").unwrap().contains("proto=https"));
}

// A plain client reaches an HTTPS back end whose certificate a configured
// test CA signed; the TLS connection is pooled and reused.
#[test]
fn http_client_to_https_backend_with_test_ca() {
    let pki = Pki::new("back");
    let cert = pki.issue("up", "upstream", &["localhost", "127.0.0.1"]);
    let upstream = TlsUpstream::start(&cert, None);
    let backend = format!(
        "{{ type = \"http\", url = \"https://127.0.0.1:{}/v1\", ca = \"{}\" }}",
        upstream.addr.port(),
        toml_path(&pki.ca_path)
    );
    let gw = Gateway::start(&plain_gateway_config(&backend));
    let mut client = gw.connect();
    for _ in 0..3 {
        let r = client.roundtrip(get_req("/api/up"));
        assert_eq!((r.status, r.text()), (200, "tls-upstream".to_string()));
    }
    assert_eq!(upstream.heads().len(), 3);
    assert_eq!(
        upstream
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert!(upstream.heads()[0].starts_with("GET /v1 HTTP/1.1\r\n"));
}

// SNI picks the exact name, then a wildcard, else the first certificate.
#[test]
fn sni_picks_the_certificate() {
    let pki = Pki::new("sni");
    let default = pki.issue("default", "default.test", &["default.test"]);
    let wildcard = pki.issue("wild", "wild", &["*.example.test"]);
    let exact = pki.issue("exact", "exact", &["api.example.test"]);
    let gw = Gateway::start(&tls_gateway_config(
        &[&default, &wildcard, &exact],
        "",
        "",
        "",
    ));
    let names = |sni: &str| {
        TlsClient::connect(gw.addr(), sni, any_cert_client_config())
            .unwrap()
            .server_cert_names()
    };
    assert!(names("api.example.test").contains(&"exact".to_string()));
    assert!(names("www.example.test").contains(&"wild".to_string()));
    assert!(names("other.test").contains(&"default.test".to_string()));
    assert!(names("127.0.0.1").contains(&"default.test".to_string()));
}

// A back end whose certificate no trusted CA signed gets 502, never a
// downgrade, and the reason is logged.
#[test]
fn unknown_backend_ca_is_502() {
    let pki = Pki::new("unknown");
    let cert = pki.issue("up", "upstream", &["localhost", "127.0.0.1"]);
    let upstream = TlsUpstream::start(&cert, None);
    let backend = format!(
        "{{ type = \"http\", url = \"https://127.0.0.1:{}/v1\" }}",
        upstream.addr.port()
    );
    let gw = Gateway::start(&plain_gateway_config(&backend));
    let r = gw.connect().roundtrip(get_req("/api/up"));
    assert_eq!(r.status, 502);
    assert!(upstream.heads().is_empty());
    assert!(eventually(|| gw
        .log_text()
        .contains("back-end TLS handshake failed")));
}

// `tls_verify = false` accepts the unknown certificate, with a warning at load.
#[test]
fn tls_verify_false_passes_with_warning() {
    let pki = Pki::new("noverify");
    let cert = pki.issue("up", "upstream", &["elsewhere.test"]);
    let upstream = TlsUpstream::start(&cert, None);
    let backend = format!(
        "{{ type = \"http\", url = \"https://127.0.0.1:{}/v1\", tls_verify = false }}",
        upstream.addr.port()
    );
    let gw = Gateway::start(&plain_gateway_config(&backend));
    let r = gw.connect().roundtrip(get_req("/api/up"));
    assert_eq!(r.status, 200);
    assert!(gw.log_text().contains("tls_verify = false"));
}

// A back end requiring a client certificate accepts the gateway's configured one.
#[test]
fn backend_client_certificate() {
    let pki = Pki::new("mutual");
    let server = pki.issue("up", "upstream", &["localhost", "127.0.0.1"]);
    let gateway_identity = pki.issue("gwclient", "portcullis-gateway", &["gateway.test"]);
    let upstream = TlsUpstream::start(&server, Some(&pki));
    let with_cert = format!(
        "{{ type = \"http\", url = \"https://127.0.0.1:{}/v1\", ca = \"{}\", client_cert = \"{}\", client_key = \"{}\" }}",
        upstream.addr.port(),
        toml_path(&pki.ca_path),
        toml_path(&gateway_identity.cert),
        toml_path(&gateway_identity.key)
    );
    let gw = Gateway::start(&plain_gateway_config(&with_cert));
    assert_eq!(gw.connect().roundtrip(get_req("/api/up")).status, 200);
    assert_eq!(
        upstream.client_subjects.lock().unwrap().clone(),
        vec!["CN=portcullis-gateway".to_string()]
    );
    let without = format!(
        "{{ type = \"http\", url = \"https://127.0.0.1:{}/v1\", ca = \"{}\" }}",
        upstream.addr.port(),
        toml_path(&pki.ca_path)
    );
    let gw = Gateway::start(&plain_gateway_config(&without));
    assert_eq!(gw.connect().roundtrip(get_req("/api/up")).status, 502);
}

// With client authentication required, a client without a certificate is
// refused and one with a certificate from the CA passes; its subject is logged.
#[test]
fn mtls_required() {
    let pki = Pki::new("mtls");
    let cert = pki.issue("gw", "gateway", &["localhost"]);
    let client_id = pki.issue("client", "test-client", &["client.test"]);
    let log_dir = tempfile::tempdir().unwrap();
    let log = log_dir.path().join("access.log");
    let extra = format!(
        ", client_auth = {{ ca = \"{}\", required = true }}",
        toml_path(&pki.ca_path)
    );
    let prelude = format!("[access_log]\npath = \"{}\"\n", log.display());
    let gw = Gateway::start(&tls_gateway_config(&[&cert], &extra, "", &prelude));
    // TLS 1.3: the refusal arrives after the client's side of the handshake.
    let refused = TlsClient::connect(gw.addr(), "localhost", client_config(pki.roots(), None))
        .and_then(|mut c| c.get("/api/hello"));
    assert!(refused.is_err(), "{refused:?}");
    let mut client = TlsClient::connect(
        gw.addr(),
        "localhost",
        client_config(pki.roots(), Some(&client_id)),
    )
    .expect("handshake with a client certificate");
    assert_eq!(client.get("/api/hello").unwrap().status, 200);
    assert!(eventually(|| std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("\"client_subject\":\"CN=test-client\"")));
}

// Replacing the certificate files switches what new connections get within
// a couple of seconds; an open connection keeps working; a broken file keeps
// the previous certificate and is logged.
#[test]
fn certificate_rotation_on_disk() {
    let pki = Pki::new("rotate");
    let live = pki.issue("live", "first", &["localhost"]);
    let gw = Gateway::start(&tls_gateway_config(&[&live], "", "", ""));
    let mut old =
        TlsClient::connect(gw.addr(), "localhost", client_config(pki.roots(), None)).unwrap();
    assert_eq!(old.get("/api/hello").unwrap().status, 200);
    assert!(old.server_cert_names().contains(&"first".to_string()));

    // An editor-style save: write a new file, rename it over the old one.
    let next = pki.issue("next", "second", &["localhost"]);
    std::fs::rename(&next.key, &live.key).unwrap();
    std::fs::rename(&next.cert, &live.cert).unwrap();
    let fresh_names = || {
        TlsClient::connect(gw.addr(), "localhost", client_config(pki.roots(), None))
            .map(|c| c.server_cert_names())
            .unwrap_or_default()
    };
    assert!(eventually(|| fresh_names().contains(&"second".to_string())));
    assert_eq!(old.get("/api/hello").unwrap().status, 200);

    std::fs::write(&live.cert, "not a certificate").unwrap();
    assert!(eventually(|| gw.log_text().contains("cannot be used")));
    assert!(fresh_names().contains(&"second".to_string()));
}

// Bytes that are not a TLS ClientHello close the connection and are counted;
// the gateway keeps serving.
#[test]
fn garbage_client_hello_is_counted_and_closed() {
    let pki = Pki::new("garbage");
    let cert = pki.issue("gw", "gateway", &["localhost"]);
    let gw = Gateway::start_with_args(
        &tls_gateway_config(&[&cert], "", "", ""),
        &["--audit-period", "1"],
    );
    let mut plain = gw.connect();
    plain.send(get_req("/api/hello"));
    let answer = plain.read_to_end_or_closed();
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    let admin = gw.admin_addr();
    assert!(eventually(|| {
        get(admin, "/metrics")
            .text()
            .contains("portcullis_tls_handshake_failures_total 1")
    }));
    assert_eq!(
        https_get(gw.addr(), "localhost", &pki, "/api/hello").status,
        200
    );
    assert!(eventually(|| get(admin, "/metrics")
        .text()
        .contains("portcullis_tls_handshakes_total 1")));
    // The audit summary counts the failed handshake too.
    assert!(eventually(|| gw.log_text().lines().any(|l| l
        .contains("security: refusals")
        && l.contains("tls_handshakes_failed=1"))));
}

// A client that connects and says nothing is closed after the handshake timeout.
#[test]
fn silent_client_times_out_in_handshake() {
    let pki = Pki::new("silent");
    let cert = pki.issue("gw", "gateway", &["localhost"]);
    let gw = Gateway::start_with_env(
        &tls_gateway_config(&[&cert], ", handshake_timeout = 0.5", "", ""),
        &[],
        &[CONN_DEBUG_LOG],
    );
    let mut silent = gw.connect();
    // A generous bound, there only to tell the configured timeout from the default one
    // (10 s); the gateway's own account says a timeout closed the connection.
    silent.set_read_timeout(Duration::from_secs(8));
    assert!(silent.read_to_end_or_closed().is_empty());
    let peer = silent.stream.local_addr().unwrap();
    assert_eq!(gw.handshake_failure(peer), "handshake timed out");
}

/// Replaces the gateway's config file the way editors do, and waits for the
/// `n`th applied reload.
fn reload_to(gw: &Gateway, text: &str, n: usize) {
    let tmp = gw.config_path().with_extension("tmp");
    // The harness started the gateway with this admin line.
    std::fs::write(&tmp, format!("admin = \"127.0.0.1:0\"\n{text}")).unwrap();
    std::fs::rename(&tmp, gw.config_path()).unwrap();
    assert!(
        eventually(|| gw.log_text().matches("result=\"applied\"").count() >= n),
        "reload {n} not applied"
    );
}

// A config reload that leaves a listener's TLS alone keeps its sessions
// (clients resume); one that changes its certificates applies to new connections.
#[test]
fn reload_keeps_sessions_and_applies_tls_changes() {
    let pki = Pki::new("reload");
    let first = pki.issue("first", "first", &["localhost"]);
    let second = pki.issue("second", "second", &["localhost"]);
    let extra_route =
        "[[deployments.routes]]\npath = \"/more\"\nbackend = { type = \"stock\", status = 200 }\n";
    let gw = Gateway::start(&tls_gateway_config(&[&first], "", "", ""));
    let config = client_config(pki.roots(), None);
    let mut client = TlsClient::connect(gw.addr(), "localhost", config.clone()).unwrap();
    assert_eq!(client.get("/api/hello").unwrap().status, 200);
    drop(client);

    reload_to(&gw, &tls_gateway_config(&[&first], "", extra_route, ""), 1);
    let mut again = TlsClient::connect(gw.addr(), "localhost", config.clone()).unwrap();
    assert!(
        again.resumed(),
        "session not resumed after an unrelated reload"
    );
    assert_eq!(again.get("/api/more").unwrap().status, 200);

    reload_to(&gw, &tls_gateway_config(&[&second], "", extra_route, ""), 2);
    let fresh =
        TlsClient::connect(gw.addr(), "localhost", client_config(pki.roots(), None)).unwrap();
    assert!(fresh.server_cert_names().contains(&"second".to_string()));
}

/// Runs `portcullis check` on a config text; returns (success, stdout + stderr).
fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

// `check` warns about a certificate expiring within 30 days and refuses a
// key that does not belong to its certificate, naming the key.
#[test]
fn check_validates_certificates() {
    let pki = Pki::new("check");
    let soon = pki.issue_for("soon", "soon", &["localhost"], 10);
    let (ok, text) = check(&tls_gateway_config(&[&soon], "", "", ""));
    assert!(ok, "{text}");
    assert!(text.contains("expires in"), "{text}");
    let other = pki.issue("other", "other", &["localhost"]);
    let mismatched = Issued {
        cert: soon.cert.clone(),
        key: other.key.clone(),
    };
    let (ok, text) = check(&tls_gateway_config(&[&mismatched], "", "", ""));
    assert!(!ok, "{text}");
    assert!(text.contains("does not match"), "{text}");
    assert!(text.contains("tls.certificates[0]"), "{text}");
}
