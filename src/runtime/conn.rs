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
use crate::runtime::admission::AddressSlot;
use crate::runtime::dispatch::{plan_request, Context, Plan, Planned};
use crate::runtime::relay::{exchange, Forwarded};
use crate::runtime::scope::{outcome, Buffers, Conn, Next, LINGER, LINGER_BYTES};
use crate::runtime::worker_ctx::WorkerCtx;
use crate::snapshot::Snapshot;
use crate::telemetry::record::Decision;
use crate::time::deadline::TaskTimer;
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
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

/// While draining, how long keep-alive connections may still bring their next
/// request before idle ones are closed: a busy client's next request, sent
/// within it, is answered (with `Connection: close`) instead of meeting a
/// closed socket.
pub const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(100);

async fn serve_request(
    ctx: &Rc<WorkerCtx>,
    client: &mut BufferedStream,
    timer: &TaskTimer,
    peer: &Peer,
    listener: usize,
    first: bool,
) -> Next {
    let conn = Conn {
        ctx,
        timer,
        peer,
        listener,
    };
    let mut buffers = Buffers::none(ctx);
    let (snapshot, Planned { plan, meta }) =
        match read_head(&conn, client, first, &mut buffers).await {
            Ok(planned) => planned,
            Err(next) => return next,
        };
    let started_at = Instant::now();
    client.consume(meta.head_len);
    let _in_flight = ctx.begin_request();
    let out = std::mem::take(&mut buffers.out);
    let send = snapshot.timeouts.send;
    let (next, outcome, out) = match plan {
        Plan::Respond {
            status,
            keep_alive,
            skip_body,
        } => {
            let keep_alive = keep_alive && skip_small_body(client, skip_body);
            let bytes_out = out.len() as u64;
            let linger = !keep_alive && bytes_out > 0 && status >= 400;
            let (written, out) = conn.write_answer(client, out, send, linger).await;
            let decision = if written {
                meta.decision
            } else {
                Decision::ClientAborted
            };
            let outcome = outcome(status, decision, &meta, bytes_out, started_at, None);
            (Next::after(written, keep_alive), outcome, out)
        }
        Plan::Forward {
            route,
            request,
            extras,
        } => {
            let forwarded = Forwarded {
                snapshot: &snapshot,
                route,
                request: &request,
                extras: &extras,
                meta: &meta,
                started_at,
            };
            exchange(&conn, client, &forwarded, out).await
        }
    };
    buffers.out = out;
    ctx.finish(&snapshot, &meta, &outcome, &buffers.log);
    next
}

/// Reads until a request head is complete and plans it, with the snapshot
/// current when its first byte arrived. `Err`: the connection ends here (an
/// unparsable head or a timeout is answered and recorded first).
async fn read_head(
    conn: &Conn<'_>,
    client: &mut BufferedStream,
    first: bool,
    buffers: &mut Buffers<'_>,
) -> Result<(Rc<Arc<Snapshot>>, Planned), Next> {
    let ctx = conn.ctx;
    // Loaded again when the first byte of an idle connection's next request
    // arrives, so a request is always served by the snapshot current at its
    // arrival (a token revoked while the connection idled is refused).
    let mut snapshot = ctx.snapshot();
    let mut started = !client.pending().is_empty();
    let clock = conn.timer.deadlines();
    let mut deadline = clock.after(if started || first {
        snapshot.timeouts.head
    } else {
        snapshot.timeouts.keep_alive
    });
    let logging = ctx.access_logging();
    loop {
        if started {
            let cx = Context {
                snapshot: &snapshot,
                peer: conn.peer,
                listener: conn.listener,
                draining: ctx.draining(),
                ids: &ctx.ids,
                limits: &ctx.limits,
            };
            buffers.take(logging);
            buffers.log.clear();
            let log = logging.then_some(&mut buffers.log);
            match plan_request(&cx, client.pending(), &mut buffers.out, log) {
                Ok(Some(planned)) => return Ok((snapshot, planned)),
                Ok(None) => {}
                Err(error) => {
                    debug!(peer = %conn.peer.addr, %error, "request refused");
                    let status = error.status();
                    let decision = Decision::for_request_error(error);
                    let bytes_in = client.pending().len() as u64;
                    refuse_unread(conn, client, buffers, &snapshot, status, decision, bytes_in)
                        .await;
                    return Err(Next::Close);
                }
            }
        }
        let idle = !(started || first);
        // Idle between requests: a drain cuts this wait short.
        conn.timer.set_idle(idle);
        let read = client
            .read_more(INITIAL_READ_CAPACITY, conn.timer, deadline)
            .await;
        conn.timer.set_idle(false);
        match read {
            Err(IoFailure::TimedOut) if idle && ctx.draining() => {
                return Err(Next::IdleWhileDraining)
            }
            Ok(_) if !started => {
                started = true;
                snapshot = ctx.snapshot();
                deadline = clock.after(snapshot.timeouts.head);
            }
            Ok(_) => {}
            Err(IoFailure::TimedOut) if started => {
                let decision = Decision::ClientTimeout;
                refuse_unread(conn, client, buffers, &snapshot, 408, decision, 0).await;
                return Err(Next::Close);
            }
            Err(_) => return Err(Next::Close),
        }
    }
}

/// Answers a request whose head could not be read (`status`, then close) and
/// records it. After a malformed head the client may still be sending: what
/// it sends is read and discarded before the close; a client too slow to send
/// its head gets its 408 without that wait.
async fn refuse_unread(
    conn: &Conn<'_>,
    client: &mut BufferedStream,
    buffers: &mut Buffers<'_>,
    snapshot: &Snapshot,
    status: u16,
    decision: Decision,
    bytes_in: u64,
) {
    let mut out = std::mem::take(&mut buffers.out);
    out.clear();
    write_error(&mut out, status, b"", Persistence::Close, false);
    let started_at = Instant::now();
    let linger = status != 408;
    let clock = conn.timer.deadlines();
    let (_, out) = client
        .write_all(out, conn.timer, clock.after(snapshot.timeouts.send))
        .await;
    if linger {
        client
            .linger_close(conn.timer, clock.after(LINGER), LINGER_BYTES)
            .await;
    }
    buffers.out = out;
    conn.ctx
        .finish_unparsed(conn.peer, status, decision, bytes_in, started_at);
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
