//! One client connection: read a request head, hand it to [`crate::runtime::dispatch`]
//! (parse, route, plan), answer or forward it, record it, and repeat while the
//! connection may be kept (keep-alive, pipelining).
//!
//! The I/O half of steps 2–7. After any rejected request nothing more is read:
//! the answer says `Connection: close` and the connection ends.
//!
//! Draining (SIGTERM or a takeover): a request read during the drain is
//! answered with `Connection: close`; once [`DRAIN_IDLE_GRACE`] has passed
//! (on the worker's 100 ms clock), a keep-alive connection waiting for its
//! next request is closed, gracefully (FIN, then whatever the client still
//! sends is read and discarded), never reset. A connection counts as in
//! flight until it closes, so the worker's drain waits for it.

use crate::http::respond::{write_error, Persistence};
use crate::http::BodyFraming;
use crate::io::buffered::{BufferedStream, IoFailure, INITIAL_READ_CAPACITY};
use crate::io::transport::Transport;
use crate::net::peer::Peer;
use crate::proxy::forward::{forward, Exchange};
use crate::proxy::Side;
use crate::runtime::admission::AddressSlot;
use crate::runtime::dispatch::{plan_request, Context, Plan, Planned, RequestMeta};
use crate::runtime::worker::WorkerCtx;
use crate::snapshot::BackendSpec;
use crate::telemetry::record::{Decision, Outcome};
use crate::time::deadline::TaskTimer;
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tracing::debug;

/// Serves one accepted connection until it closes.
pub async fn serve(
    ctx: Rc<WorkerCtx>,
    stream: TcpStream,
    addr: SocketAddr,
    listener: usize,
    _address_slot: AddressSlot,
) {
    let mut peer = Peer::new(addr);
    let _ = stream.set_nodelay(true);
    ctx.telemetry.connection_opened();
    let _open = ctx.begin_request();
    let timer = ctx.deadlines.timer();
    let tls = ctx
        .snapshot()
        .listeners
        .get(listener)
        .and_then(|l| l.tls.clone());
    let transport = match tls {
        None => Transport::Plain(stream),
        Some(tls) => match Box::pin(crate::tls::accept(&tls, stream, &timer)).await {
            Ok((transport, info)) => {
                ctx.telemetry.tls_handshake(true);
                peer = peer.with_tls(info);
                transport
            }
            Err(reason) => {
                ctx.telemetry.tls_handshake(false);
                debug!(peer = %addr, %reason, "TLS handshake failed");
                ctx.telemetry.connection_closed();
                return;
            }
        },
    };
    let mut client = BufferedStream::new(transport, INITIAL_READ_CAPACITY);
    let mut first = true;
    loop {
        match serve_request(&ctx, &mut client, &timer, &peer, listener, first).await {
            // While draining too: the next request, if it comes within the
            // grace, is answered with `Connection: close`.
            Next::KeepAlive => {
                first = false;
                client.shrink_if_idle();
            }
            Next::IdleWhileDraining => {
                let deadline = timer.deadlines().after(LINGER);
                client.linger_close(&timer, deadline, LINGER_BYTES).await;
                break;
            }
            Next::Close => break,
        }
    }
    ctx.telemetry.connection_closed();
}

/// After an error answer on a connection the client may still be sending on,
/// how long (and how many bytes) to read and discard before closing.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 256 * 1024;

/// While draining, how long keep-alive connections may still bring their next
/// request before idle ones are closed: a busy client's next request, sent
/// within it, is answered (with `Connection: close`) instead of meeting a
/// closed socket.
pub const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(100);

/// Whether the connection carries another request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    KeepAlive,
    Close,
    /// Idle between requests while draining: close gracefully.
    IdleWhileDraining,
}

impl Next {
    fn from(written: bool, keep_alive: bool) -> Next {
        if written && keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        }
    }
}

async fn serve_request(
    ctx: &Rc<WorkerCtx>,
    client: &mut BufferedStream,
    timer: &TaskTimer,
    peer: &Peer,
    listener: usize,
    first: bool,
) -> Next {
    // Loaded again when the first byte of an idle connection's next request
    // arrives, so a request is always served by the snapshot current at its
    // arrival (a token revoked while the connection idled is refused).
    let mut snapshot = ctx.snapshot();
    let timeouts = snapshot.timeouts;
    let mut started = !client.pending().is_empty();
    let clock = timer.deadlines();
    let mut deadline = clock.after(if started || first {
        timeouts.head
    } else {
        timeouts.keep_alive
    });
    let send_deadline = || clock.after(timeouts.send);
    // Idle connections hold no buffers: they are taken with the first byte.
    let mut out = Vec::new();
    let mut log_fields = Vec::new();
    let logging = ctx.access_logging();
    let Planned { plan, meta } = loop {
        if started {
            let cx = Context {
                snapshot: &snapshot,
                peer,
                listener,
                draining: ctx.draining(),
                ids: &ctx.ids,
                limits: &ctx.limits,
            };
            if out.capacity() == 0 {
                out = ctx.take_buffer();
                if logging {
                    log_fields = ctx.take_buffer();
                }
            }
            log_fields.clear();
            let log = logging.then_some(&mut log_fields);
            match plan_request(&cx, client.pending(), &mut out, log) {
                Ok(Some(planned)) => break planned,
                Ok(None) => {}
                Err(error) => {
                    debug!(peer = %peer.addr, %error, "request refused");
                    let status = error.status();
                    write_error(&mut out, status, b"", Persistence::Close, false);
                    let started_at = Instant::now();
                    let (_, out) = client.write_all(out, timer, send_deadline()).await;
                    client
                        .linger_close(timer, clock.after(LINGER), LINGER_BYTES)
                        .await;
                    let decision = Decision::for_request_error(error);
                    ctx.finish_unparsed(
                        peer,
                        status,
                        decision,
                        client.pending().len() as u64,
                        started_at,
                    );
                    ctx.give_buffer(out);
                    ctx.give_buffer(log_fields);
                    return Next::Close;
                }
            }
        }
        let read = if started || first {
            client
                .read_more(INITIAL_READ_CAPACITY, timer, deadline)
                .await
        } else {
            // Idle between requests: a drain cuts this wait short.
            timer.set_idle(true);
            let read = client
                .read_more(INITIAL_READ_CAPACITY, timer, deadline)
                .await;
            timer.set_idle(false);
            if matches!(read, Err(IoFailure::TimedOut)) && ctx.draining() {
                return Next::IdleWhileDraining;
            }
            read
        };
        match read {
            Ok(_) if !started => {
                started = true;
                snapshot = ctx.snapshot();
                deadline = clock.after(snapshot.timeouts.head);
            }
            Ok(_) => {}
            Err(IoFailure::TimedOut) if started => {
                out.clear();
                write_error(&mut out, 408, b"", Persistence::Close, false);
                let started_at = Instant::now();
                let (_, out) = client.write_all(out, timer, send_deadline()).await;
                ctx.finish_unparsed(peer, 408, Decision::ClientTimeout, 0, started_at);
                ctx.give_buffer(out);
                ctx.give_buffer(log_fields);
                return Next::Close;
            }
            Err(_) => {
                ctx.give_buffer(out);
                ctx.give_buffer(log_fields);
                return Next::Close;
            }
        }
    };
    let started_at = Instant::now();
    client.consume(meta.head_len);
    let _in_flight = ctx.begin_request();
    let (next, outcome, out) = match plan {
        Plan::Respond {
            status,
            keep_alive,
            skip_body,
        } => {
            let keep_alive = keep_alive && skip_small_body(client, skip_body);
            let bytes_out = out.len() as u64;
            let (result, out) = client.write_all(out, timer, send_deadline()).await;
            if result.is_ok() && !keep_alive && bytes_out > 0 && status >= 400 {
                client
                    .linger_close(timer, clock.after(LINGER), LINGER_BYTES)
                    .await;
            }
            let decision = if result.is_ok() {
                meta.decision
            } else {
                Decision::ClientAborted
            };
            let outcome = outcome(status, decision, &meta, bytes_out, started_at, None);
            (Next::from(result.is_ok(), keep_alive), outcome, out)
        }
        Plan::Forward {
            route,
            request,
            extras,
        } => {
            let spec = &snapshot.routes[route];
            let BackendSpec::Http(backend) = &spec.backend else {
                return Next::Close;
            };
            let security = &snapshot.listeners[listener].security;
            let exchange = Exchange {
                pool: &ctx.pool,
                pool_settings: snapshot.pool,
                timeouts,
                timer,
                written: std::cell::Cell::new(0),
                response_edits: crate::policy::headers::ResponseEdits {
                    transform: spec.policies.response_headers.as_ref(),
                    extras: &extras,
                    security,
                },
            };
            let backend_start = Instant::now();
            let (result, mut out) = forward(&exchange, client, backend, &request, out).await;
            let backend_time = Some(backend_start.elapsed());
            match result {
                Ok(relayed) => {
                    let decision = if meta.quota_breached {
                        Decision::QuotaBreachedAllowed
                    } else {
                        Decision::BackendResponded
                    };
                    let outcome = outcome(
                        relayed.status,
                        decision,
                        &meta,
                        relayed.bytes_out,
                        started_at,
                        backend_time,
                    );
                    (Next::from(true, relayed.keep_alive), outcome, out)
                }
                Err(e) if e.response_started => {
                    debug!(peer = %peer.addr, reason = e.reason, "exchange aborted mid-response");
                    let decision = match e.side {
                        Side::Upstream => Decision::BackendAborted,
                        Side::Client => Decision::ClientAborted,
                    };
                    let outcome = outcome(e.status, decision, &meta, 0, started_at, backend_time);
                    (Next::Close, outcome, out)
                }
                Err(e) => {
                    debug!(peer = %peer.addr, status = e.status, reason = e.reason, "exchange failed");
                    let keep_alive = request.client_keep_alive && !e.request_unfinished;
                    let persistence = Persistence::for_client(request.client_version, keep_alive);
                    out.clear();
                    let mut fields = Vec::new();
                    request.request_id.write_field(&mut fields);
                    fields.extend_from_slice(&extras.cors_fields);
                    fields.extend_from_slice(&security.fields);
                    write_error(
                        &mut out,
                        e.status,
                        &fields,
                        persistence,
                        request.head_request,
                    );
                    let bytes_out = out.len() as u64;
                    let (result, out) = client.write_all(out, timer, send_deadline()).await;
                    if result.is_ok() && !keep_alive {
                        client
                            .linger_close(timer, clock.after(LINGER), LINGER_BYTES)
                            .await;
                    }
                    let decision = Decision::for_exchange_status(e.status);
                    let outcome = outcome(
                        e.status,
                        decision,
                        &meta,
                        bytes_out,
                        started_at,
                        backend_time,
                    );
                    (Next::from(result.is_ok(), keep_alive), outcome, out)
                }
            }
        }
    };
    ctx.finish(&snapshot, &meta, &outcome, &log_fields);
    ctx.give_buffer(out);
    ctx.give_buffer(log_fields);
    next
}

fn outcome(
    status: u16,
    decision: Decision,
    meta: &RequestMeta,
    bytes_out: u64,
    started_at: Instant,
    backend: Option<Duration>,
) -> Outcome {
    Outcome {
        status,
        decision,
        bytes_in: meta.head_len as u64 + meta.body_len,
        bytes_out,
        total: started_at.elapsed(),
        backend,
    }
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
