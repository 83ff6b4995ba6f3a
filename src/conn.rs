//! One client connection: read a request head, route it, answer or forward it,
//! repeat while the connection may be kept (keep-alive, pipelining).
//!
//! Steps 3–5 of a request's way. The head is parsed and routed synchronously
//! while it borrows the read buffer; what must outlive the borrow (the upstream
//! request head or a complete answer) is written into an output buffer, and only
//! then does I/O resume. After any rejected request nothing more is read: the
//! answer says `Connection: close` and the connection ends.

use crate::buffered::{BufferedStream, IoFailure, INITIAL_READ_CAPACITY};
use crate::deadline::TaskTimer;
use crate::http::request::{header_storage, parse_request, Parsed, RequestError, RequestHead};
use crate::http::respond::{write_error, Persistence};
use crate::http::BodyFraming;
use crate::peer::Peer;
use crate::proxy::forward::{forward, Exchange, ForwardRequest};
use crate::proxy::rewrite::write_upstream_request;
use crate::snapshot::{BackendSpec, MethodDispatch, Snapshot};
use crate::worker::WorkerCtx;
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use tracing::debug;

/// Serves one accepted connection until it closes.
pub async fn serve(ctx: Rc<WorkerCtx>, stream: TcpStream, addr: SocketAddr, listener: usize) {
    let peer = Peer::new(addr);
    let _ = stream.set_nodelay(true);
    ctx.telemetry.connection_opened();
    let mut client = BufferedStream::new(stream, INITIAL_READ_CAPACITY);
    let timer = ctx.deadlines.timer();
    let mut first = true;
    loop {
        let snapshot = ctx.snapshot();
        match serve_request(&ctx, &snapshot, &mut client, &timer, &peer, listener, first).await {
            Next::KeepAlive if !ctx.draining() => {
                first = false;
                client.shrink_if_idle();
            }
            _ => break,
        }
    }
    ctx.telemetry.connection_closed();
}

/// Whether the connection carries another request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
}

/// What to do with a parsed request once the read buffer is free again.
#[derive(Debug)]
enum Plan {
    /// `out` holds a complete answer; `skip_body` bytes of request body follow
    /// the head and must be discarded (or the connection closed).
    Respond {
        status: u16,
        keep_alive: bool,
        skip_body: BodyFraming,
    },
    /// `out` holds the upstream request head.
    Forward {
        route: usize,
        request: ForwardRequest,
    },
}

async fn serve_request(
    ctx: &Rc<WorkerCtx>,
    snapshot: &Arc<crate::snapshot::Snapshot>,
    client: &mut BufferedStream,
    timer: &TaskTimer,
    peer: &Peer,
    listener: usize,
    first: bool,
) -> Next {
    let timeouts = snapshot.timeouts;
    let mut started = !client.pending().is_empty();
    let clock = timer.deadlines();
    let mut deadline = clock.after(if started || first {
        timeouts.head
    } else {
        timeouts.keep_alive
    });
    let send_deadline = || clock.after(timeouts.send);
    // Idle connections hold no output buffer: it is taken with the first byte.
    let mut out = Vec::new();
    let (plan, head_len) = loop {
        if started {
            if out.capacity() == 0 {
                out = ctx.take_buffer();
            }
            match plan_request(
                snapshot,
                client.pending(),
                peer,
                listener,
                ctx.draining(),
                &mut out,
            ) {
                Ok(Some(planned)) => break planned,
                Ok(None) => {}
                Err(error) => {
                    debug!(peer = %peer.addr, %error, "request refused");
                    write_error(&mut out, error.status(), b"", Persistence::Close, false);
                    let (_, out) = client.write_all(out, timer, send_deadline()).await;
                    ctx.telemetry.request_done(error.status());
                    ctx.give_buffer(out);
                    return Next::Close;
                }
            }
        }
        match client
            .read_more(INITIAL_READ_CAPACITY, timer, deadline)
            .await
        {
            Ok(_) if !started => {
                started = true;
                deadline = clock.after(timeouts.head);
            }
            Ok(_) => {}
            Err(IoFailure::TimedOut) if started => {
                out.clear();
                write_error(&mut out, 408, b"", Persistence::Close, false);
                let (_, out) = client.write_all(out, timer, send_deadline()).await;
                ctx.telemetry.request_done(408);
                ctx.give_buffer(out);
                return Next::Close;
            }
            Err(_) => {
                ctx.give_buffer(out);
                return Next::Close;
            }
        }
    };
    client.consume(head_len);
    let _in_flight = ctx.begin_request();
    let (next, out) = match plan {
        Plan::Respond {
            status,
            keep_alive,
            skip_body,
        } => {
            let keep_alive = keep_alive && skip_small_body(client, skip_body);
            let (result, out) = client.write_all(out, timer, send_deadline()).await;
            ctx.telemetry.request_done(status);
            (
                if result.is_ok() && keep_alive {
                    Next::KeepAlive
                } else {
                    Next::Close
                },
                out,
            )
        }
        Plan::Forward { route, request } => {
            let BackendSpec::Http(backend) = &snapshot.routes[route].backend else {
                return Next::Close;
            };
            let exchange = Exchange {
                pool: &ctx.pool,
                pool_settings: snapshot.pool,
                timeouts,
                timer,
            };
            let (result, mut out) = forward(&exchange, client, backend, &request, out).await;
            match result {
                Ok(relayed) => {
                    ctx.telemetry.request_done(relayed.status);
                    let next = if relayed.keep_alive {
                        Next::KeepAlive
                    } else {
                        Next::Close
                    };
                    (next, out)
                }
                Err(e) if e.response_started => {
                    debug!(peer = %peer.addr, reason = e.reason, "exchange aborted mid-response");
                    (Next::Close, out)
                }
                Err(e) => {
                    debug!(peer = %peer.addr, status = e.status, reason = e.reason, "exchange failed");
                    let keep_alive = request.client_keep_alive && !e.request_unfinished;
                    let persistence = Persistence::for_client(request.client_version, keep_alive);
                    out.clear();
                    write_error(&mut out, e.status, b"", persistence, request.head_request);
                    let (result, out) = client.write_all(out, timer, send_deadline()).await;
                    ctx.telemetry.request_done(e.status);
                    (
                        if result.is_ok() && keep_alive {
                            Next::KeepAlive
                        } else {
                            Next::Close
                        },
                        out,
                    )
                }
            }
        }
    };
    ctx.give_buffer(out);
    next
}

/// Discards a request body that is already fully read; false when the
/// connection must close instead (body not all here yet, or chunked).
fn skip_small_body(client: &mut BufferedStream, body: BodyFraming) -> bool {
    match body {
        BodyFraming::None => true,
        BodyFraming::Length(n) if n <= client.pending().len() as u64 => {
            client.consume(n as usize);
            true
        }
        _ => false,
    }
}

/// Parses the pending bytes; when a head is complete, routes it and writes
/// either the answer or the upstream request head into `out`.
/// `Ok(None)` means the head is not complete yet.
fn plan_request(
    snapshot: &Snapshot,
    pending: &[u8],
    peer: &Peer,
    listener: usize,
    draining: bool,
    out: &mut Vec<u8>,
) -> Result<Option<(Plan, usize)>, RequestError> {
    let mut storage = header_storage();
    let head = match parse_request(pending, &snapshot.head_limits, &mut storage)? {
        Parsed::Partial => return Ok(None),
        Parsed::Complete(head) => head,
    };
    let keep_alive = head.keep_alive && !draining;
    let body_available = pending.len().saturating_sub(head.len);
    let plan = route_request(
        snapshot,
        &head,
        peer,
        listener,
        keep_alive,
        body_available,
        out,
    );
    Ok(Some((plan, head.len)))
}

fn route_request(
    snapshot: &Snapshot,
    head: &RequestHead<'_, '_>,
    peer: &Peer,
    listener: usize,
    keep_alive: bool,
    body_available: usize,
    out: &mut Vec<u8>,
) -> Plan {
    // An answer the gateway gives itself keeps the connection only if the
    // request body, if any, is already here to be skipped; otherwise say close.
    let skippable = match head.body {
        BodyFraming::None => true,
        BodyFraming::Length(n) => n <= body_available as u64,
        BodyFraming::Chunked | BodyFraming::UntilClose => false,
    };
    let forward_keep_alive = keep_alive;
    let keep_alive = keep_alive && skippable;
    let persistence = Persistence::for_client(head.version, keep_alive);
    let answer = |out: &mut Vec<u8>, status: u16, extra: &[u8]| {
        write_error(out, status, extra, persistence, head.is_head());
        Plan::Respond {
            status,
            keep_alive,
            skip_body: head.body,
        }
    };
    let Some(found) = snapshot
        .tables
        .get(listener)
        .and_then(|t| t.lookup(head.path))
    else {
        return answer(out, 404, b"");
    };
    let route = match found.value.dispatch(&snapshot.routes, head.method) {
        MethodDispatch::Route(route) => route,
        MethodDispatch::NotAllowed => {
            let mut allow = Vec::with_capacity(found.value.allow.len() + 9);
            allow.extend_from_slice(b"Allow: ");
            allow.extend_from_slice(found.value.allow.as_bytes());
            allow.extend_from_slice(b"\r\n");
            return answer(out, 405, &allow);
        }
    };
    match &snapshot.routes[route].backend {
        BackendSpec::Stock(stock) => {
            out.extend_from_slice(&stock.head);
            persistence.write_field(out);
            out.extend_from_slice(b"\r\n");
            if !head.is_head() {
                out.extend_from_slice(&stock.body);
            }
            Plan::Respond {
                status: stock.status,
                keep_alive,
                skip_body: head.body,
            }
        }
        BackendSpec::Http(backend) => {
            if let BodyFraming::Length(n) = head.body {
                if n > snapshot.max_body_bytes {
                    write_error(out, 413, b"", Persistence::Close, head.is_head());
                    return Plan::Respond {
                        status: 413,
                        keep_alive: false,
                        skip_body: head.body,
                    };
                }
            }
            write_upstream_request(out, head, backend, &found.params, peer, head.body);
            Plan::Forward {
                route,
                request: ForwardRequest {
                    body: head.body,
                    idempotent: head.is_idempotent(),
                    head_request: head.is_head(),
                    expect_continue: head.expect_continue,
                    client_version: head.version,
                    client_keep_alive: forward_keep_alive,
                    max_body: snapshot.max_body_bytes,
                },
            }
        }
    }
}
