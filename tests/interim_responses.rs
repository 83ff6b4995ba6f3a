//! Interim responses from the back end: `103 Early Hints` reaches an HTTP/1.1
//! client before the final response (while the back end still holds it),
//! with its `Link` fields; an HTTP/1.0 client gets only the final response.

mod common;

use common::*;

fn early_hints_upstream(gate: &Gate) -> RecordingUpstream {
    let gate = gate.clone();
    RecordingUpstream::start(move |_| {
        Reply::raw("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
            .then_wait_for(&gate)
            .then_raw("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal")
    })
}

// Rule: a 103 Early Hints reaches an HTTP/1.1 client before the final response.
#[test]
fn early_hints_reach_http11_clients_first() {
    let gate = Gate::new();
    let up = early_hints_upstream(&gate);
    let gw = start_standard(&up, "");
    let mut c = gw.connect();
    c.send(get_req("/api/any/hints"));
    let hints = c.read_response();
    assert_eq!(
        (hints.status, hints.header("link")),
        (103, Some("</a.css>; rel=preload"))
    );
    gate.open();
    let r = c.read_response();
    assert_eq!((r.status, r.text()), (200, "final".to_string()));
    c.send(get_req("/api/any/next"));
    assert_eq!(c.read_response().status, 103);
    assert_eq!(c.read_response().status, 200);
}

// Rule: an HTTP/1.0 client gets no interim response, only the final one.
#[test]
fn http10_clients_get_no_interim_response() {
    let gate = Gate::new();
    gate.open();
    let up = early_hints_upstream(&gate);
    let gw = start_standard(&up, "");
    let r = request(
        gw.addr(),
        "GET /api/any/hints HTTP/1.0\r\nHost: gw.test\r\n\r\n",
    );
    assert_eq!((r.status, r.text()), (200, "final".to_string()));
}
