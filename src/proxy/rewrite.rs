//! Rewriting heads as they cross the gateway.
//!
//! Request side (step 6): the back end gets `METHOD target HTTP/1.1` with the
//! target built from the back-end URL template, `Host` set to the back end's
//! authority, hop-by-hop fields dropped (with every field `Connection` names),
//! `X-Forwarded-For` and `Forwarded` appended, `X-Forwarded-Proto` (`https` on
//! TLS listeners) and
//! `X-Forwarded-Host` set, `Max-Forwards` of an OPTIONS or TRACE decremented
//! (RFC 9110 §7.6.2), and framing written by the gateway. Response side
//! (step 7): hop-by-hop fields dropped and framing and `Connection` rewritten for
//! the client. Everything else passes unchanged, `Authorization` included
//! (unless the back end has credentials of its own),
//! except what the route's header transformations ([`crate::policy::headers`]), CORS
//! and the listener's security headers change.

use super::forwarding::{write_forwarded_element, write_forwarding_fields, Joined};
use crate::http::fields::is_named;
use crate::http::fields::{is_hop_by_hop, shadows_gateway_field, write_field, ConnectionTokens};
use crate::http::max_forwards;
use crate::http::request::RequestHead;
use crate::http::respond::{write_content_length, Persistence};
use crate::http::response::ResponseHead;
use crate::http::BodyFraming;
use crate::net::peer::Peer;
use crate::policy::headers::{FieldAction, HeaderTransform, ResponseEdits, TemplateContext};
use crate::policy::usage::{DeploymentUsage, TokenLocation};
use crate::route::table::Params;
use crate::snapshot::{HttpBackendSpec, UrlPart};
use crate::telemetry::record::RequestId;

/// A route's `request_headers` and what its values may read.
pub type RequestEdits<'a> = (&'a HeaderTransform, &'a TemplateContext<'a>);

/// Appends the request head the back end receives, with the route's header
/// transformation (if any) applied to the fields the gateway passes on. Every
/// place the deployment's usage plans look for a client token is removed: the
/// token never reaches the back end. `credential` is the back end's own
/// `Authorization` field line ([`crate::policy::credentials`]): the client's
/// `Authorization` is then dropped. A WebSocket opening request
/// (`websocket`) keeps its upgrade: `Connection: Upgrade` and `Upgrade:
/// websocket` are written again after the hop-by-hop fields are dropped
/// (the `Sec-WebSocket-*` fields pass as end-to-end fields).
#[allow(clippy::too_many_arguments)]
pub fn write_upstream_request(
    out: &mut Vec<u8>,
    head: &RequestHead<'_, '_>,
    backend: &HttpBackendSpec,
    params: &Params<'_, '_>,
    peer: &Peer,
    request_id: &RequestId,
    body: BodyFraming,
    usage: Option<&DeploymentUsage>,
    edits: Option<RequestEdits<'_>>,
    credential: Option<&[u8]>,
    websocket: bool,
) {
    let token_locations = usage.map_or(&[][..], |u| &u.locations[..]);
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    write_target(out, head, backend, params, token_locations);
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(backend.authority.as_bytes());
    out.extend_from_slice(b"\r\n");

    // Most requests name no option in `Connection`: nothing to collect.
    let connection = if head.connection_options {
        ConnectionTokens::collect(head.headers)
    } else {
        ConnectionTokens::default()
    };
    // OPTIONS and TRACE with forwards left (0 never gets here): one fewer.
    let hops = max_forwards::remaining(head);
    let mut forwarded_for_written = false;
    let mut forwarded_written = false;
    for header in head.headers {
        let name = header.name;
        if is_hop_by_hop(name)
            || is_named(name, "host")
            || is_named(name, "expect")
            || is_named(name, "x-forwarded-proto")
            || is_named(name, "x-forwarded-host")
            || is_named(name, "x-request-id")
            || connection.names(name)
            || shadows_gateway_field(name)
            || is_token_header(token_locations, name)
            || (credential.is_some() && is_named(name, "authorization"))
            || (hops.is_some() && max_forwards::is_field(name))
        {
            continue;
        }
        if is_named(name, "x-forwarded-for") {
            if !forwarded_for_written {
                write_joined(out, "X-Forwarded-For", head.headers, name, |o| {
                    o.extend_from_slice(peer.ip_text())
                });
                forwarded_for_written = true;
            }
            continue;
        }
        if is_named(name, "forwarded") {
            if !forwarded_written {
                write_joined(out, "Forwarded", head.headers, name, |o| {
                    write_forwarded_element(o, peer, head.host)
                });
                forwarded_written = true;
            }
            continue;
        }
        let name = match edits.map(|(t, _)| t.action(name)) {
            Some(FieldAction::Drop) => continue,
            Some(FieldAction::Rename(to)) => to,
            _ => name,
        };
        write_field(out, name.as_bytes(), header.value);
    }
    if let Some((transform, cx)) = edits {
        transform.write_sets(out, head.headers, |i, out| {
            transform.set[i].value.render(cx, out)
        });
    }
    if let Some(line) = credential {
        out.extend_from_slice(line);
    }
    let joined = Joined {
        forwarded_for: forwarded_for_written,
        forwarded: forwarded_written,
    };
    write_forwarding_fields(out, peer, head.host, joined, hops, request_id);
    if websocket {
        out.extend_from_slice(UPGRADE_FIELDS);
    }
    match body {
        BodyFraming::Length(n) => write_content_length(out, n),
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::None | BodyFraming::UntilClose => {
            if matches!(head.method, "POST" | "PUT" | "PATCH") {
                out.extend_from_slice(b"Content-Length: 0\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The fields that carry a WebSocket upgrade across the gateway, both ways.
const UPGRADE_FIELDS: &[u8] = b"Connection: Upgrade\r\nUpgrade: websocket\r\n";

/// The back end's target: URL template with params, remainder, query.
fn write_target(
    out: &mut Vec<u8>,
    head: &RequestHead<'_, '_>,
    backend: &HttpBackendSpec,
    params: &Params<'_, '_>,
    token_locations: &[TokenLocation],
) {
    let start = out.len();
    for part in &backend.path {
        match part {
            UrlPart::Literal(s) => out.extend_from_slice(s.as_bytes()),
            UrlPart::Param(name) => {
                out.extend_from_slice(params.get(name).unwrap_or("").as_bytes())
            }
        }
    }
    if let Some(catch_all) = &backend.append_remainder {
        let remainder = params.get(catch_all).unwrap_or("");
        if !remainder.is_empty() {
            if out.last() != Some(&b'/') {
                out.push(b'/');
            }
            out.extend_from_slice(remainder.as_bytes());
        }
    }
    if out.len() == start {
        out.push(b'/');
    }
    let strips_query = token_locations
        .iter()
        .any(|l| matches!(l, TokenLocation::Query(_)));
    if strips_query {
        let mut separator = b'?';
        let own = backend.query.as_deref().into_iter();
        let client = head.query.into_iter().flat_map(|q| q.split('&'));
        for pair in own.chain(client.filter(|p| !is_token_pair(token_locations, p))) {
            if pair.is_empty() {
                continue;
            }
            out.push(separator);
            out.extend_from_slice(pair.as_bytes());
            separator = b'&';
        }
        return;
    }
    match (&backend.query, head.query) {
        (Some(own), Some(client)) if !client.is_empty() => {
            out.push(b'?');
            out.extend_from_slice(own.as_bytes());
            out.push(b'&');
            out.extend_from_slice(client.as_bytes());
        }
        (Some(own), _) => {
            out.push(b'?');
            out.extend_from_slice(own.as_bytes());
        }
        (None, Some(client)) => {
            out.push(b'?');
            out.extend_from_slice(client.as_bytes());
        }
        (None, None) => {}
    }
}

/// True when `name` is a header a client token is read from.
fn is_token_header(locations: &[TokenLocation], name: &str) -> bool {
    locations
        .iter()
        .any(|l| matches!(l, TokenLocation::Header(h) if h.eq_ignore_ascii_case(name)))
}

/// True when a `key=value` query pair carries a client token.
fn is_token_pair(locations: &[TokenLocation], pair: &str) -> bool {
    let (key, _) = crate::http::query::split_pair(pair);
    locations
        .iter()
        .any(|l| matches!(l, TokenLocation::Query(q) if crate::http::query::is_param_named(key, q)))
}

/// Field lines passed on as received: consecutive lines kept with their
/// name unchanged and ending in CRLF are copied from the raw head as one
/// run; any other line is written again (`Name: value` CRLF).
struct RawLines<'b> {
    raw: &'b [u8],
    /// The run waiting to be copied: `raw[start..end]`.
    start: usize,
    end: usize,
}

impl<'b> RawLines<'b> {
    fn new(raw: &'b [u8]) -> Self {
        RawLines {
            raw,
            start: 0,
            end: 0,
        }
    }

    /// Where `header`'s line lies in the raw head, when it can be copied as
    /// it is: its name spelt `name` and a CRLF right after the value.
    fn line_of(&self, header: &httparse::Header<'_>, name: &str) -> Option<(usize, usize)> {
        let base = self.raw.as_ptr() as usize;
        let start = (header.name.as_ptr() as usize).checked_sub(base)?;
        let value_end = (header.value.as_ptr() as usize).checked_sub(base)? + header.value.len();
        let unchanged =
            std::ptr::eq(name.as_ptr(), header.name.as_ptr()) && !header.value.is_empty();
        let crlf = self.raw.get(value_end..value_end + 2) == Some(b"\r\n");
        (unchanged && crlf && start < value_end).then_some((start, value_end + 2))
    }

    /// Passes `header` on, named `name`.
    fn pass(&mut self, out: &mut Vec<u8>, header: &httparse::Header<'_>, name: &str) {
        match self.line_of(header, name) {
            Some((start, end)) if start == self.end && self.end > self.start => self.end = end,
            Some((start, end)) => {
                self.flush(out);
                (self.start, self.end) = (start, end);
            }
            None => {
                self.flush(out);
                write_field(out, name.as_bytes(), header.value);
            }
        }
    }

    /// Copies the run waiting.
    fn flush(&mut self, out: &mut Vec<u8>) {
        if self.end > self.start {
            out.extend_from_slice(&self.raw[self.start..self.end]);
        }
        self.start = self.end;
    }
}

/// Writes `Name: v1, v2, ..., <ours>` joining every client field named `name`.
fn write_joined(
    out: &mut Vec<u8>,
    canonical: &str,
    headers: &[httparse::Header<'_>],
    name: &str,
    ours: impl FnOnce(&mut Vec<u8>),
) {
    out.extend_from_slice(canonical.as_bytes());
    out.extend_from_slice(b": ");
    for header in headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)) {
        let value = crate::http::fields::trim_ows(header.value);
        if !value.is_empty() {
            out.extend_from_slice(value);
            out.extend_from_slice(b", ");
        }
    }
    ours(out);
    out.extend_from_slice(b"\r\n");
}

/// The options the response's `Connection` fields name, looked for only
/// when parsing saw one besides `close` and `keep-alive`.
fn connection_tokens<'b>(response: &ResponseHead<'_, 'b>) -> ConnectionTokens<'b> {
    if response.connection_options {
        ConnectionTokens::collect(response.headers)
    } else {
        ConnectionTokens::default()
    }
}

/// How the response body travels to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFraming {
    /// No body bytes (HEAD, 204, 304, or an empty body).
    None,
    /// Content-Length, relayed as is.
    Length(u64),
    /// Chunked coding to the client (the back end's chunks or a close-delimited body).
    Chunked,
    /// Raw bytes until the gateway closes (HTTP/1.0 clients).
    UntilClose,
}

/// Appends the response head the client receives.
pub fn write_client_response(
    out: &mut Vec<u8>,
    response: &ResponseHead<'_, '_>,
    framing: ClientFraming,
    persistence: Persistence,
    request_id: &RequestId,
    edits: &ResponseEdits<'_>,
) {
    crate::http::respond::write_status_line(out, response.status, response.reason);
    let connection = connection_tokens(response);
    // HEAD and 304 answers describe the representation; a 204 has no length (RFC 9110 §8.6).
    let keep_declared_length = response.body == BodyFraming::None && response.status != 204;
    let mut dated = false;
    let mut lines = RawLines::new(response.raw);
    for header in response.headers {
        let name = header.name;
        dated |= name.len() == 4 && is_named(name, "date");
        if keep_declared_length && is_named(name, "content-length") {
            lines.pass(out, header, name);
            continue;
        }
        if is_hop_by_hop(name)
            || connection.names(name)
            || (name.len() == 12 && is_named(name, "x-request-id"))
        {
            continue;
        }
        let Some(name) = edits.field_name(name) else {
            continue;
        };
        lines.pass(out, header, name);
    }
    lines.flush(out);
    edits.write_added(out, response.headers);
    // RFC 9110 §6.6.1: a response forwarded without a Date gets one.
    if !dated {
        crate::http::date::write_date_field(out);
    }
    request_id.write_field(out);
    match framing {
        ClientFraming::Length(n) => write_content_length(out, n),
        ClientFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        ClientFraming::None | ClientFraming::UntilClose => {}
    }
    persistence.write_field(out);
    out.extend_from_slice(b"\r\n");
}

/// Appends the `101 Switching Protocols` head the client receives for an
/// accepted WebSocket: the back end's fields (hop-by-hop ones dropped, the
/// route's response edits applied), then the upgrade fields again; no
/// framing (the connection now carries WebSocket frames).
pub fn write_switching_response(
    out: &mut Vec<u8>,
    response: &ResponseHead<'_, '_>,
    request_id: &RequestId,
    edits: &ResponseEdits<'_>,
) {
    crate::http::respond::write_status_line(out, response.status, response.reason);
    let connection = connection_tokens(response);
    for header in response.headers {
        let name = header.name;
        if is_hop_by_hop(name)
            || connection.names(name)
            || is_named(name, "x-request-id")
            || is_named(name, "content-length")
        {
            continue;
        }
        let Some(name) = edits.field_name(name) else {
            continue;
        };
        write_field(out, name.as_bytes(), header.value);
    }
    edits.write_added(out, response.headers);
    request_id.write_field(out);
    out.extend_from_slice(UPGRADE_FIELDS);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[path = "rewrite_tests.rs"]
mod tests;
