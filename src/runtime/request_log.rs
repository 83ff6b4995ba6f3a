//! The access-log fields a request's head decides (id, client, method, path,
//! protocol, route, subscriber, TLS), written while the head still borrows the
//! read buffer; the connection adds status, sizes and times when it ends.

use crate::http::request::RequestHead;
use crate::http::Version;
use crate::net::peer::Peer;
use crate::policy::usage::Admitted;
use crate::snapshot::Snapshot;
use crate::telemetry::format::write_json_str;
use crate::telemetry::record::RequestId;
use std::net::IpAddr;

/// The access-log fields known once the head is parsed.
#[allow(clippy::too_many_arguments)]
pub fn write_log_fields(
    log: &mut Vec<u8>,
    snapshot: &Snapshot,
    peer: &Peer,
    head: &RequestHead<'_, '_>,
    id: &RequestId,
    client: IpAddr,
    route: Option<usize>,
    case: Option<u16>,
    usage: &Admitted,
) {
    log.extend_from_slice(b"\"request_id\":");
    write_json_str(log, id.as_bytes());
    log.extend_from_slice(b",\"client\":\"");
    if client == peer.addr.ip() {
        log.extend_from_slice(peer.ip_text());
    } else {
        use std::io::Write;
        let _ = write!(log, "{client}");
    }
    log.push(b'"');
    log.extend_from_slice(b",\"method\":");
    write_json_str(log, head.method.as_bytes());
    log.extend_from_slice(b",\"path\":");
    write_json_str(log, head.path.as_bytes());
    log.extend_from_slice(b",\"protocol\":");
    log.extend_from_slice(match head.version {
        Version::Http10 => b"\"HTTP/1.0\"",
        Version::Http11 => b"\"HTTP/1.1\"",
    });
    log.push(b',');
    match route.and_then(|r| snapshot.routes.get(r)) {
        Some(r) => {
            log.extend_from_slice(&r.log_fields);
            if let (crate::snapshot::BackendSpec::Dynamic(d), Some(case)) = (&r.backend, case) {
                log.extend_from_slice(b",\"backend_case\":");
                let name = d.names.get(case as usize).map_or("", |n| n);
                write_json_str(log, name.as_bytes());
            }
        }
        None => log.extend_from_slice(b"\"deployment\":null,\"route\":null,\"backend\":null"),
    }
    let subscriber = usage.client.and_then(|(s, c)| {
        let subscriber = snapshot.usage.subscribers.get(s as usize)?;
        Some((subscriber, subscriber.clients.get(c as usize)?))
    });
    match subscriber {
        Some((subscriber, client)) => {
            log.extend_from_slice(b",\"subscriber\":");
            write_json_str(log, subscriber.name.as_bytes());
            log.extend_from_slice(b",\"client_name\":");
            write_json_str(log, client.as_bytes());
            if usage.quota_breached {
                log.extend_from_slice(b",\"quota_breached\":true");
            }
        }
        None => log.extend_from_slice(NO_SUBSCRIBER),
    }
    log.extend_from_slice(b",\"tls\":");
    log.extend_from_slice(peer.tls_log_value());
}

/// The subscriber fields of a request without a client token.
pub const NO_SUBSCRIBER: &[u8] = b",\"subscriber\":null,\"client_name\":null";
