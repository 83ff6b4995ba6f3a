//! Steps 3–5 of a request's way, synchronously, while the head borrows the
//! read buffer: parse the head, route it, run the policies, and write either
//! the gateway's own answer or the upstream request head into the output
//! buffer. What must outlive the borrow comes back as a [`Planned`] (small,
//! `Copy` data), so the connection can resume I/O.

use crate::http::date::write_date_field;
use crate::http::path::routing_path;
use crate::http::request::{header_storage, parse_request, Parsed, RequestError, RequestHead};
use crate::http::respond::{write_error, Persistence};
use crate::http::{BodyFraming, Version};
use crate::net::peer::Peer;
use crate::policy::cors::{write_preflight_answer, Preflight};
use crate::policy::headers::edits::ResponseExtras;
use crate::policy::headers::{RenderedValues, TemplateContext};
use crate::policy::usage::{Admitted, LocalShares};
use crate::policy::{chain, Answer, RequestCtx, Step};
use crate::proxy::forward::ForwardRequest;
use crate::proxy::rewrite::write_upstream_request;
use crate::snapshot::{BackendSpec, MethodDispatch, PathEntry, RouteSpec, Snapshot};
use crate::telemetry::format::write_json_str;
use crate::telemetry::record::{Decision, RequestId};
use std::cell::Cell;
use std::net::IpAddr;

/// What to do once the read buffer is free again.
#[derive(Debug)]
pub enum Plan {
    /// `out` holds a complete answer; a request body of `skip_body` follows the
    /// head and must be discarded (or the connection closed).
    Respond {
        status: u16,
        keep_alive: bool,
        skip_body: BodyFraming,
    },
    /// `out` holds the upstream request head.
    Forward {
        route: usize,
        /// What the response head needs from this request (CORS, header values).
        extras: ResponseExtras,
        request: ForwardRequest,
    },
}

/// What the telemetry needs to know about a request, fixed at its head.
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta {
    pub id: RequestId,
    pub route: Option<usize>,
    /// The decision if the gateway answered itself (forwarded requests decide later).
    pub decision: Decision,
    pub head_len: usize,
    pub body_len: u64,
    /// Forwarded over quota with `on_breach = allow`.
    pub quota_breached: bool,
}

/// A parsed and planned request.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub meta: RequestMeta,
}

/// A worker's source of request ids: a random prefix and a counter.
pub struct RequestIds {
    prefix: u64,
    counter: Cell<u64>,
}

impl RequestIds {
    pub fn new(prefix: u64) -> Self {
        RequestIds {
            prefix,
            counter: Cell::new(0),
        }
    }

    /// The next generated id.
    pub fn next_id(&self) -> RequestId {
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        RequestId::generate(self.prefix, n)
    }
}

/// Everything a plan depends on besides the bytes.
pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    pub peer: &'a Peer,
    pub listener: usize,
    pub draining: bool,
    pub ids: &'a RequestIds,
    /// The worker's leases on shared rate limits.
    pub limits: &'a LocalShares,
}

/// Parses the pending bytes; when a head is complete, routes it and writes the
/// answer or the upstream head into `out`, and, if `log` is given, the
/// request's access-log fields. `Ok(None)`: the head is not complete yet.
pub fn plan_request(
    cx: &Context<'_>,
    pending: &[u8],
    out: &mut Vec<u8>,
    log: Option<&mut Vec<u8>>,
) -> Result<Option<Planned>, RequestError> {
    let mut storage = header_storage();
    let head = match parse_request(pending, &cx.snapshot.head_limits, &mut storage)? {
        Parsed::Partial => return Ok(None),
        Parsed::Complete(head) => head,
    };
    let id = head
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("x-request-id"))
        .and_then(|h| RequestId::from_client(h.value))
        .unwrap_or_else(|| cx.ids.next_id());
    let body_available = pending.len().saturating_sub(head.len);
    let client = client_address(cx, &head);
    let mut usage = Admitted::default();
    let (plan, route, decision) =
        route_request(cx, &head, id, client, body_available, out, &mut usage);
    if let Some(log) = log {
        write_log_fields(log, cx, &head, &id, client, route, &usage);
    }
    let body_len = match head.body {
        BodyFraming::Length(n) => n,
        _ => 0,
    };
    Ok(Some(Planned {
        plan,
        meta: RequestMeta {
            id,
            route,
            decision,
            head_len: head.len,
            body_len,
            quota_breached: usage.quota_breached,
        },
    }))
}

/// Routes the head and writes the answer or the upstream head; returns the
/// plan and the route (None for 404/405).
fn route_request(
    cx: &Context<'_>,
    head: &RequestHead<'_, '_>,
    id: RequestId,
    client: IpAddr,
    body_available: usize,
    out: &mut Vec<u8>,
    usage: &mut Admitted,
) -> (Plan, Option<usize>, Decision) {
    let snapshot = cx.snapshot;
    let forward_keep_alive = head.keep_alive && !cx.draining;
    // An answer the gateway gives itself keeps the connection only if the
    // request body, if any, is already here to be skipped; otherwise say close.
    let skippable = match head.body {
        BodyFraming::None => true,
        BodyFraming::Length(n) => n <= body_available as u64,
        BodyFraming::Chunked | BodyFraming::UntilClose => false,
    };
    let keep_alive = forward_keep_alive && skippable;
    let persistence = Persistence::for_client(head.version, keep_alive);
    let id_field = IdField::new(&id);
    let security = snapshot
        .listeners
        .get(cx.listener)
        .map_or(&[][..], |l| &l.security.fields[..]);
    let answer = |out: &mut Vec<u8>, status: u16, fields: &[u8]| {
        if security.is_empty() {
            write_error(out, status, fields, persistence, head.is_head());
        } else {
            let all = [fields, security].concat();
            write_error(out, status, &all, persistence, head.is_head());
        }
        Plan::Respond {
            status,
            keep_alive,
            skip_body: head.body,
        }
    };
    // Routing sees `/%61dmin` and `//admin` as `/admin`, so a spelling
    // cannot steer a request around a route and its policies.
    let decoded = routing_path(head.path);
    let route_path = decoded.as_deref().unwrap_or(head.path);
    let Some(found) = snapshot
        .tables
        .get(cx.listener)
        .and_then(|t| t.lookup(route_path))
    else {
        return (answer(out, 404, id_field.bytes()), None, Decision::NoRoute);
    };
    // A CORS preflight goes to the route of the method it asks about.
    let preflight = crate::policy::cors::preflight(head)
        .and_then(|p| preflight_route(found.value, &snapshot.routes, &p).map(|route| (p, route)));
    let dispatched = match &preflight {
        Some((_, route)) => MethodDispatch::Route(*route),
        None => found.value.dispatch(&snapshot.routes, head.method),
    };
    let route = match dispatched {
        MethodDispatch::Route(route) => route,
        MethodDispatch::NotAllowed => {
            // Rare: the Allow value is built on the heap.
            let mut fields = Vec::with_capacity(found.value.allow.len() + 96);
            fields.extend_from_slice(id_field.bytes());
            fields.extend_from_slice(b"Allow: ");
            fields.extend_from_slice(found.value.allow.as_bytes());
            fields.extend_from_slice(b"\r\n");
            return (answer(out, 405, &fields), None, Decision::MethodNotAllowed);
        }
    };
    let spec = &snapshot.routes[route];
    let deployment = &snapshot.deployments[spec.deployment];
    let mut policy_cx = RequestCtx::new(head, client, spec.deployment, &deployment.name);
    let step = chain::run(
        &mut policy_cx,
        &deployment.policies,
        &spec.policies,
        preflight.as_ref().map(|(p, _)| p),
        &snapshot.usage,
        cx.limits,
    );
    match step {
        Step::Continue => {}
        Step::Reject(refusal) if refusal.silent => {
            // Nothing is written: the connection just closes.
            let plan = Plan::Respond {
                status: refusal.status,
                keep_alive: false,
                skip_body: head.body,
            };
            return (plan, Some(route), refusal.decision);
        }
        Step::Reject(refusal) => {
            let fields = [id_field.bytes(), &refusal.fields].concat();
            let plan = answer(out, refusal.status, &fields);
            return (plan, Some(route), refusal.decision);
        }
        Step::Answer(Answer::Preflight) => {
            let fields = [id_field.bytes(), security].concat();
            if let (Some(policy), Some((preflight, _))) = (&spec.policies.cors, &preflight) {
                write_preflight_answer(out, policy, preflight, &fields, persistence);
            }
            let plan = Plan::Respond {
                status: 204,
                keep_alive,
                skip_body: head.body,
            };
            return (plan, Some(route), Decision::CorsPreflight);
        }
    }
    *usage = policy_cx.usage;
    let admitted = policy_cx;
    let subscriber: Option<&str> = usage
        .client
        .and_then(|(s, _)| snapshot.usage.subscribers.get(s as usize))
        .map(|s| s.name.as_str());
    let (plan, decision) = match &spec.backend {
        BackendSpec::Stock(stock) => {
            out.extend_from_slice(&stock.head);
            if !stock.has_date {
                write_date_field(out);
            }
            id.write_field(out);
            out.extend_from_slice(&admitted.extras.cors_fields);
            out.extend_from_slice(security);
            persistence.write_field(out);
            out.extend_from_slice(b"\r\n");
            if !head.is_head() {
                out.extend_from_slice(&stock.body);
            }
            (
                Plan::Respond {
                    status: stock.status,
                    keep_alive,
                    skip_body: head.body,
                },
                Decision::StockResponse,
            )
        }
        BackendSpec::Http(backend) => {
            if let BodyFraming::Length(n) = head.body {
                if n > snapshot.max_body_bytes {
                    write_error(
                        out,
                        413,
                        id_field.bytes(),
                        Persistence::Close,
                        head.is_head(),
                    );
                    let plan = Plan::Respond {
                        status: 413,
                        keep_alive: false,
                        skip_body: head.body,
                    };
                    return (plan, Some(route), Decision::BodyTooLarge);
                }
            }
            let template_cx = TemplateContext {
                head,
                params: &found.params,
                claims: admitted.claims.as_deref(),
                subscriber,
            };
            let transform = spec
                .policies
                .request_headers
                .as_ref()
                .map(|t| (t, &template_cx));
            write_upstream_request(
                out,
                head,
                backend,
                &found.params,
                cx.peer,
                &id,
                head.body,
                deployment.policies.usage.as_ref(),
                transform,
            );
            let mut extras = admitted.extras;
            if let Some(t) = &spec.policies.response_headers {
                extras.values = RenderedValues::render(t, &template_cx);
            }
            let plan = Plan::Forward {
                route,
                extras,
                request: ForwardRequest {
                    body: head.body,
                    idempotent: head.is_idempotent(),
                    head_request: head.is_head(),
                    expect_continue: head.expect_continue,
                    client_version: head.version,
                    client_keep_alive: forward_keep_alive,
                    max_body: snapshot.max_body_bytes,
                    request_id: id,
                },
            };
            (plan, Decision::BackendResponded)
        }
    };
    (plan, Some(route), decision)
}

/// The route a CORS preflight on this path answers for: the route the
/// requested method leads to, if it has a CORS policy.
fn preflight_route(
    entry: &PathEntry,
    routes: &[RouteSpec],
    preflight: &Preflight<'_>,
) -> Option<usize> {
    let method = std::str::from_utf8(preflight.method).ok()?;
    match entry.dispatch(routes, method) {
        MethodDispatch::Route(r) if routes[r].policies.cors.is_some() => Some(r),
        _ => None,
    }
}

/// The `X-Request-Id` field line, on the stack.
struct IdField {
    buf: [u8; 16 + crate::telemetry::record::MAX_REQUEST_ID],
    len: usize,
}

impl IdField {
    fn new(id: &RequestId) -> Self {
        let mut field = IdField {
            buf: [0; 16 + crate::telemetry::record::MAX_REQUEST_ID],
            len: 0,
        };
        for part in [&b"X-Request-Id: "[..], id.as_bytes(), b"\r\n"] {
            field.buf[field.len..field.len + part.len()].copy_from_slice(part);
            field.len += part.len();
        }
        field
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// The access-log fields known once the head is parsed.
/// The client's address: the peer, or, when the peer is one of the
/// listener's `trusted_proxies`, the right-most `X-Forwarded-For` entry that is
/// not itself a trusted proxy (so a client cannot forge its address by
/// prepending entries).
fn client_address(cx: &Context<'_>, head: &RequestHead<'_, '_>) -> IpAddr {
    let peer = cx.peer.addr.ip();
    let Some(listener) = cx.snapshot.listeners.get(cx.listener) else {
        return peer;
    };
    if listener.trusted_proxies.is_empty() || !listener.trusted_proxies.contains(peer) {
        return peer;
    }
    let mut client = peer;
    let forwarded = head
        .headers
        .iter()
        .rev()
        .filter(|h| h.name.eq_ignore_ascii_case("x-forwarded-for"));
    for header in forwarded {
        for entry in header.value.rsplit(|&b| b == b',') {
            let text = std::str::from_utf8(crate::http::fields::trim_ows(entry)).unwrap_or("");
            let Ok(ip) = text.parse::<IpAddr>() else {
                return client;
            };
            if !listener.trusted_proxies.contains(ip) {
                return ip;
            }
            client = ip;
        }
    }
    client
}

/// The access-log fields known once the head is parsed.
fn write_log_fields(
    log: &mut Vec<u8>,
    cx: &Context<'_>,
    head: &RequestHead<'_, '_>,
    id: &RequestId,
    client: IpAddr,
    route: Option<usize>,
    usage: &Admitted,
) {
    log.extend_from_slice(b"\"request_id\":");
    write_json_str(log, id.as_bytes());
    log.extend_from_slice(b",\"client\":\"");
    if client == cx.peer.addr.ip() {
        log.extend_from_slice(cx.peer.ip_text());
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
    match route.and_then(|r| cx.snapshot.routes.get(r)) {
        Some(r) => log.extend_from_slice(&r.log_fields),
        None => log.extend_from_slice(b"\"deployment\":null,\"route\":null,\"backend\":null"),
    }
    let subscriber = usage.client.and_then(|(s, c)| {
        let subscriber = cx.snapshot.usage.subscribers.get(s as usize)?;
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
    log.extend_from_slice(cx.peer.tls_log_value());
}

/// The subscriber fields of a request without a client token.
pub const NO_SUBSCRIBER: &[u8] = b",\"subscriber\":null,\"client_name\":null";
