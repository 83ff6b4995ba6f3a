//! TLS conformance probes over real sockets, with certificates the tests
//! generate: protocol versions (TLS 1.0/1.1 ClientHellos refused with an
//! alert, TLS 1.2 and 1.3 accepted with ECDHE + AEAD suites only), ALPN (never
//! `h2`), plain HTTP and stalled handshakes on the TLS port (closed, bounded
//! by the handshake timeout), client certificates from another CA or expired
//! (refused, also when optional), and back-end verification (wrong name,
//! expired certificate: 502).

mod common;
#[path = "support/tls.rs"]
mod support;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

/// A TLS listener in front of a stock `/api/hello`, with `tls_extra` in its `tls` table.
fn tls_gateway(cert: &Issued, tls_extra: &str) -> Gateway {
    Gateway::start(&tls_config(cert, tls_extra))
}

/// The config of [`tls_gateway`].
fn tls_config(cert: &Issued, tls_extra: &str) -> String {
    format!(
        r#"
[[listeners]]
name = "secure"
address = "127.0.0.1:0"
tls = {{ certificates = [{{ cert = "{}", key = "{}" }}]{tls_extra} }}

[[deployments]]
name = "api"
listener = "secure"
path_prefix = "/api"

[[deployments.routes]]
path = "/hello"
backend = {{ type = "stock", status = 200, body = "hi\n" }}
"#,
        toml_path(&cert.cert),
        toml_path(&cert.key)
    )
}

/// A ClientHello record: `version` as legacy version, `suites`, `extensions` (raw).
fn client_hello(version: [u8; 2], suites: &[u16], extensions: &[u8]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend([0x5a; 32]);
    body.push(0);
    body.extend(((suites.len() * 2) as u16).to_be_bytes());
    for suite in suites {
        body.extend(suite.to_be_bytes());
    }
    body.extend([1, 0]);
    body.extend((extensions.len() as u16).to_be_bytes());
    body.extend(extensions);
    let mut handshake = vec![1];
    handshake.extend(&(body.len() as u32).to_be_bytes()[1..]);
    handshake.extend(body);
    let mut record = vec![0x16, 3, 1];
    record.extend((handshake.len() as u16).to_be_bytes());
    record.extend(handshake);
    record
}

/// Sends `bytes` and reads until the server closes (5 s at most).
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    answer
}

/// The alert description of a plaintext alert record, if the answer is one.
fn alert(answer: &[u8]) -> Option<u8> {
    (answer.len() >= 7 && answer[0] == 0x15 && answer[3..5] == [0, 2]).then(|| answer[6])
}

// RFC 8996: TLS 1.0 and 1.1 MUST NOT be negotiated; RFC 9325 §4.2: TLS 1.2
// only with ECDHE and AEAD suites. A ClientHello offering only those gets an
// alert (protocol_version 70 or handshake_failure 40), never a ServerHello;
// TLS 1.2 and 1.3 clients get an ECDHE AEAD suite.
#[test]
fn protocol_versions_and_cipher_suites() {
    let pki = Pki::new("versions");
    let cert = pki.issue("gw", "gateway", &["localhost"]);
    let gw = tls_gateway(&cert, "");
    // ECDHE-RSA/ECDSA-AES128-SHA, AES256-SHA, RSA AES128-SHA, AES256-SHA (CBC era).
    let old_suites = [0xc013, 0xc009, 0xc014, 0x002f, 0x0035];
    let probes = [
        ("TLS 1.0 ClientHello", [3, 1]),
        ("TLS 1.1 ClientHello", [3, 2]),
        ("TLS 1.2 ClientHello, CBC suites only", [3, 3]),
    ];
    for (what, version) in probes {
        let answer = exchange(gw.addr(), &client_hello(version, &old_suites, &[]));
        assert!(
            matches!(alert(&answer), Some(70 | 40)),
            "{what}: expected a protocol_version or handshake_failure alert, got {answer:02x?}"
        );
    }
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
        let mut client = TlsClient::connect(gw.addr(), "localhost", Arc::new(config)).unwrap();
        let suite = format!(
            "{:?}",
            client
                .connection()
                .negotiated_cipher_suite()
                .unwrap()
                .suite()
        );
        assert_eq!(
            client.connection().protocol_version(),
            Some(version.version)
        );
        let tls13 = suite.starts_with("TLS13_");
        assert!(
            (tls13 || suite.contains("_ECDHE_"))
                && (suite.contains("GCM") || suite.contains("CHACHA20")),
            "{suite}"
        );
        assert_eq!(client.get("/api/hello").unwrap().status, 200);
    }
}

// RFC 7301 §3.2: the server picks a protocol it speaks among those offered,
// or refuses with the no_application_protocol alert; the gateway speaks
// HTTP/1.1 only, so it never selects h2: an h2-only client gets the alert.
#[test]
fn alpn_never_selects_h2() {
    let pki = Pki::new("alpn");
    let cert = pki.issue("gw", "gateway", &["localhost"]);
    let gw = tls_gateway(&cert, "");
    let with_alpn = |protocols: &[&[u8]]| {
        let mut config = (*client_config(pki.roots(), None)).clone();
        config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
        TlsClient::connect(gw.addr(), "localhost", Arc::new(config))
            .and_then(|mut c| c.get("/api/hello").map(|r| (c.alpn(), r.status)))
    };
    let h2_only = with_alpn(&[b"h2"]);
    assert!(
        h2_only
            .as_ref()
            .is_err_and(|e| e.contains("NoApplicationProtocol")),
        "h2-only client: {h2_only:?}"
    );
    assert_eq!(
        with_alpn(&[b"h2", b"http/1.1"]),
        Ok((Some(b"http/1.1".to_vec()), 200))
    );
    assert_eq!(
        with_alpn(&[b"http/1.1"]),
        Ok((Some(b"http/1.1".to_vec()), 200))
    );
    assert_eq!(with_alpn(&[]), Ok((None, 200)));
}

// Plain HTTP on the TLS port is closed at once (no HTTP answer, no hang); a
// client that stops partway through its ClientHello, or after it, is closed
// when the handshake timeout (1 s) runs out; the gateway keeps serving.
//
// Which of the two closed a connection is read from the gateway's own account
// of the failed handshake (its debug line, per peer address), not from how long
// the close took: plain HTTP fails on its first bytes, a stalled hello on the
// timeout. The only clock check left is a lower bound (the timeout did wait).
#[test]
fn plain_http_and_stalled_handshakes_are_closed() {
    let pki = Pki::new("stall");
    let cert = pki.issue("gw", "gateway", &["localhost"]);
    let gw = Gateway::start_with_env(
        &tls_config(&cert, ", handshake_timeout = 1"),
        &[],
        &[CONN_DEBUG_LOG],
    );
    let mut tcp = TcpStream::connect(gw.addr()).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"GET /api/hello HTTP/1.1\r\nHost: gw.test\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    assert!(
        tcp.read_to_end(&mut answer).is_ok(),
        "plain HTTP: not closed"
    );
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");
    let reason = gw.handshake_failure(tcp.local_addr().unwrap());
    assert!(
        !reason.contains("timed out"),
        "plain HTTP was closed by the timeout, not at once: {reason}"
    );
    let hello = client_hello([3, 3], &[0xc02b, 0xc02f, 0x1301], &[]);
    for (what, sent) in [
        ("half a ClientHello", &hello[..hello.len() / 2]),
        ("a record header", &hello[..5]),
    ] {
        let started = Instant::now();
        let mut tcp = TcpStream::connect(gw.addr()).unwrap();
        // A generous bound, there only to tell the configured timeout (1 s) from the
        // default one (10 s).
        tcp.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
        tcp.write_all(sent).unwrap();
        let mut rest = Vec::new();
        let closed = tcp.read_to_end(&mut rest).is_ok();
        let waited = started.elapsed();
        // The gateway's deadlines are coarse (100 ms ticks), so it may cut a little
        // before 1 s after the connect; never at once.
        assert!(
            closed && waited >= Duration::from_millis(500),
            "{what}: closed={closed} after {waited:?}"
        );
        let reason = gw.handshake_failure(tcp.local_addr().unwrap());
        assert_eq!(reason, "handshake timed out", "{what}");
    }
    let mut client =
        TlsClient::connect(gw.addr(), "localhost", client_config(pki.roots(), None)).unwrap();
    assert_eq!(client.get("/api/hello").unwrap().status, 200);
}

/// Whether a client presenting `identity` (or none) gets `/api/hello` answered.
fn mtls_passes(gw: &Gateway, pki: &Pki, identity: Option<&Issued>) -> bool {
    TlsClient::connect(gw.addr(), "localhost", client_config(pki.roots(), identity))
        .and_then(|mut c| c.get("/api/hello"))
        .is_ok_and(|r| r.status == 200)
}

// RFC 8446 §4.4.2.4 / RFC 5280 §6: a client certificate that does not chain to
// the configured CA, or is expired, is refused, whether client
// authentication is required or optional; no certificate passes only when optional.
#[test]
fn client_certificates_from_another_ca_or_expired_are_refused() {
    let pki = Pki::new("partners");
    let stranger_ca = Pki::new("stranger");
    let cert = pki.issue("gw", "gateway", &["localhost"]);
    let good = pki.issue("good", "partner", &["partner.test"]);
    let expired = pki.issue_for("old", "partner-old", &["partner.test"], -1);
    let foreign = stranger_ca.issue("foreign", "partner", &["partner.test"]);
    for required in [true, false] {
        let gw = tls_gateway(
            &cert,
            &format!(
                ", client_auth = {{ ca = \"{}\", required = {required} }}",
                toml_path(&pki.ca_path)
            ),
        );
        assert_eq!(
            [
                mtls_passes(&gw, &pki, Some(&good)),
                mtls_passes(&gw, &pki, Some(&expired)),
                mtls_passes(&gw, &pki, Some(&foreign)),
                mtls_passes(&gw, &pki, None),
            ],
            [true, false, false, !required],
            "required = {required}"
        );
    }
}

// RFC 9110 §4.3.4 / RFC 6125: the back end's certificate must name the host
// of the URL (the DNS name, or the IP literal) and be valid now, even when
// its CA is trusted; otherwise 502, never a plain-text or unverified retry.
#[test]
fn backend_certificate_name_and_validity_enforced() {
    let pki = Pki::new("backends");
    let right = pki.issue("right", "upstream", &["localhost", "127.0.0.1"]);
    let wrong_name = pki.issue("wrong", "upstream", &["elsewhere.test"]);
    let ip_only = pki.issue("iponly", "upstream", &["127.0.0.1"]);
    let expired = pki.issue_for("expired", "upstream", &["localhost", "127.0.0.1"], -1);
    let upstreams = [
        ("right", TlsUpstream::start(&right, None), "127.0.0.1", 200),
        (
            "right-dns",
            TlsUpstream::start(&right, None),
            "localhost",
            200,
        ),
        (
            "wrong-name",
            TlsUpstream::start(&wrong_name, None),
            "127.0.0.1",
            502,
        ),
        (
            "ip-cert-for-dns",
            TlsUpstream::start(&ip_only, None),
            "localhost",
            502,
        ),
        (
            "expired",
            TlsUpstream::start(&expired, None),
            "127.0.0.1",
            502,
        ),
    ];
    let mut config = String::from(
        "[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n\n[[deployments]]\nname = \"api\"\nlistener = \"public\"\npath_prefix = \"/api\"\n",
    );
    for (route, upstream, host, _) in &upstreams {
        config.push_str(&format!(
            "\n[[deployments.routes]]\npath = \"/{route}\"\nbackend = {{ type = \"http\", url = \"https://{host}:{}/v1\", ca = \"{}\" }}\n",
            upstream.addr.port(),
            toml_path(&pki.ca_path)
        ));
    }
    let gw = Gateway::start(&config);
    for (route, upstream, _, expected) in &upstreams {
        let status = gw
            .connect()
            .roundtrip(get_req(&format!("/api/{route}")))
            .status;
        assert_eq!(status, *expected, "{route}");
        if *expected == 502 {
            assert!(
                upstream.heads().is_empty(),
                "{route}: a request reached the back end"
            );
        }
    }
}
