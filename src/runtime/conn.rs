//! One client connection: read a request head, hand it to [`crate::runtime::dispatch`]
//! (parse, route, plan), answer or forward it, record it, and repeat while the
//! connection may be kept (keep-alive, pipelining).
//!
//! The I/O half of steps 2–7. A plan that must wait for a remote
//! authenticator ([`Plan::Authorize`]: an uncached HTTP authorizer or
//! introspection answer) is awaited here, on the worker's own runtime and
//! pool ([`crate::proxy::side_call`]), once per request; the outcome is
//! handed to the policy and the head planned again. After any rejected request nothing more is read:
//! the answer says `Connection: close` and the connection ends.
//!
//! Draining (SIGTERM or a takeover): a request read during the drain is
//! answered with `Connection: close`; once [`DRAIN_IDLE_GRACE`] has passed
//! (on the worker's 100 ms clock), a keep-alive connection waiting for its
//! next request is closed, gracefully (FIN, then whatever the client still
//! sends is read and discarded), never reset. A connection counts as in
//! flight until it closes, so the worker's drain waits for it.

use crate::io::buffered::{BufferedStream, INITIAL_READ_CAPACITY};
use crate::net::peer::Peer;
use crate::proxy::forward::forward;
use crate::proxy::side_call;
use crate::runtime::dispatch::{Plan, Planned};
use crate::runtime::head_reader::{refuse_unread, skip_small_body, HeadReader, Unread};
use crate::runtime::relay::{exchange_for, http_backend, settle, Forwarded, Settled};
use crate::runtime::scope::{outcome, Buffers, Conn, Connection, Next, LINGER, LINGER_BYTES};
use crate::runtime::websocket;
use crate::runtime::worker_ctx::WorkerCtx;
use crate::telemetry::record::Decision;
use crate::time::deadline::{Elapsed, TaskTimer, Tick};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tracing::debug;

/// Serves an open connection (see [`crate::runtime::open`]) until it closes.
/// The task holds only `conn` and the wait for the next request while idle.
// Not `async fn`: see the comment inside.
#[allow(clippy::manual_async_fn)]
pub fn serve(mut conn: Connection) -> impl Future<Output = ()> {
    // An `async` block that owns `conn`: an `async fn` would hold its
    // argument twice (the argument and the local it is moved into).
    async move {
        let mut first = true;
        loop {
            if conn.client.pending().is_empty() {
                conn.go_idle();
                // Holding no buffer until the client sends (or closes).
                let (deadline, idle) = idle_deadline(&conn, first);
                conn.timer.set_idle(idle);
                let ready = conn
                    .timer
                    .within(deadline, conn.client.stream.readable())
                    .await;
                conn.timer.set_idle(false);
                if matches!(ready, Ok(Ok(()))) {
                    conn.client.note_readable();
                }
                match after_wait(&conn.ctx, ready, idle) {
                    Next::KeepAlive => {}
                    Next::IdleWhileDraining => {
                        close_gracefully(&mut conn).await;
                        break;
                    }
                    Next::Close => break,
                }
            }
            let Connection {
                ctx,
                client,
                timer,
                peer,
                listener,
                ..
            } = &mut conn;
            client.provide_buffer(|| ctx.take_buffer());
            // Boxed: the requests' state (head, plan, upstream exchange) lives
            // on the heap only while the client keeps sending.
            let served = Box::pin(serve_busy(ctx, client, timer, peer, *listener));
            match served.await {
                // While draining too: the next request, if it comes within the
                // grace, is answered with `Connection: close`.
                Next::KeepAlive => first = false,
                Next::IdleWhileDraining | Next::Close => break,
            }
        }
    }
}

/// Closes an idle connection while draining: FIN, then what the client still
/// sends is read and discarded (boxed: rare, and larger than the idle wait).
fn close_gracefully(conn: &mut Connection) -> Pin<Box<dyn Future<Output = ()> + '_>> {
    let deadline = conn.timer.deadlines().after(LINGER);
    Box::pin(
        conn.client
            .linger_close(&conn.timer, deadline, LINGER_BYTES),
    )
}

/// How long a connection may wait for its next request: the first
/// request's head timeout, then the keep-alive timeout, an idle wait that a
/// drain cuts short (`true`).
fn idle_deadline(conn: &Connection, first: bool) -> (Tick, bool) {
    let timeouts = conn.ctx.snapshot().timeouts;
    let (wait, idle) = if first {
        (timeouts.head, false)
    } else {
        (timeouts.keep_alive, true)
    };
    (conn.timer.deadlines().after(wait), idle)
}

/// What the wait for the next request came to: `KeepAlive` when there is
/// something to read; `IdleWhileDraining` when a drain cut an idle wait short.
fn after_wait(ctx: &WorkerCtx, ready: Result<std::io::Result<()>, Elapsed>, idle: bool) -> Next {
    match ready {
        Ok(Ok(())) => Next::KeepAlive,
        Err(_) if idle && ctx.draining() => Next::IdleWhileDraining,
        _ => Next::Close,
    }
}

/// How long a connection that just answered a request keeps its request
/// state (not its read buffer) waiting for the next one before it goes idle
/// and gives it back: until the worker's next clock tick, 0–100 ms. Its idle
/// wait then starts afresh: a keep-alive connection may stay open up to this
/// much longer than `keep_alive`.
pub const BUSY_WINDOW: Duration = crate::time::deadline::TICK;

/// While draining, how long keep-alive connections may still bring their next
/// request before idle ones are closed: a busy client's next request, sent
/// within it, is answered (with `Connection: close`) instead of meeting a
/// closed socket.
pub const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(100);

/// Serves requests while the client keeps them coming: each request, then,
/// when nothing is pending, a wait of at most [`BUSY_WINDOW`] for the next
/// (holding no read buffer).
/// Returns `KeepAlive` when the client went quiet (the caller then waits
/// holding no buffer and no request state), else how the connection ends.
///
/// One call is one heap allocation (the caller boxes it) for a whole busy
/// period, not one per request; the request's state is this future's own,
/// not a future built per request and moved into place.
async fn serve_busy(
    ctx: &Rc<WorkerCtx>,
    client: &mut BufferedStream,
    timer: &TaskTimer,
    peer: &Peer,
    listener: usize,
) -> Next {
    loop {
        let next = {
            let conn = Conn {
                ctx,
                timer,
                peer,
                listener,
            };
            let mut buffers = Buffers::none(ctx);
            // The awaits stay in this function (the helpers around them are
            // synchronous): a future awaited inside a helper's future is moved twice.
            let mut head = HeadReader::new(&conn, client);
            let mut asked = false;
            let Planned { plan, meta } = loop {
                if head.started {
                    match head.plan(&conn, client, &mut buffers) {
                        // A remote authenticator must answer first (once per request).
                        Ok(Some(Planned {
                            plan: Plan::Authorize(question),
                            ..
                        })) if !asked => {
                            asked = true;
                            let snapshot = &head.snapshot;
                            let policies = snapshot.deployments.get(question.deployment);
                            let remote = policies.and_then(|d| d.policies.remote_auth.as_ref());
                            if let Some(remote) = remote {
                                let call = remote.call();
                                let answer = side_call::call(
                                    &ctx.pool,
                                    snapshot.pool,
                                    timer,
                                    call,
                                    &question.body,
                                )
                                .await;
                                remote.deliver(&question, answer);
                            }
                            continue;
                        }
                        Ok(Some(planned)) => break planned,
                        Ok(None) => {}
                        Err(error) => {
                            debug!(peer = %peer.addr, %error, "request refused");
                            let unread = Unread {
                                status: error.status(),
                                decision: Decision::for_request_error(error),
                                bytes_in: client.pending().len() as u64,
                            };
                            refuse_unread(&conn, client, &mut buffers, &head.snapshot, unread)
                                .await;
                            return Next::Close;
                        }
                    }
                }
                let read = client
                    .read_more(INITIAL_READ_CAPACITY, timer, head.deadline)
                    .await;
                match head.after_read(read) {
                    None => {}
                    Some(Err(unread)) => {
                        refuse_unread(&conn, client, &mut buffers, &head.snapshot, unread).await;
                        return Next::Close;
                    }
                    Some(Ok(next)) => return next,
                }
            };
            let snapshot = head.snapshot;
            let started_at = Instant::now();
            client.consume(meta.head_len);
            let _in_flight = ctx.begin_request();
            let mut out = std::mem::take(&mut buffers.out);
            let send = snapshot.timeouts.send;
            let (next, outcome) = match plan {
                // Asked twice for one request: the answer did not stick; give up.
                Plan::Authorize(_) => {
                    debug!(peer = %peer.addr, "authorizer answer not applied; closing");
                    let outcome = outcome(
                        500,
                        Decision::AuthorizerUnavailable,
                        &meta,
                        0,
                        started_at,
                        None,
                    );
                    (Next::Close, outcome)
                }
                Plan::Respond {
                    status,
                    keep_alive,
                    skip_body,
                } => {
                    let keep_alive = keep_alive && skip_small_body(client, skip_body);
                    let bytes_out = out.len() as u64;
                    let linger = !keep_alive && bytes_out > 0 && status >= 400;
                    let (written, sent) = conn.write_answer(client, out, send, linger).await;
                    out = sent;
                    let decision = if written {
                        meta.decision
                    } else {
                        Decision::ClientAborted
                    };
                    let outcome = outcome(status, decision, &meta, bytes_out, started_at, None);
                    (Next::after(written, keep_alive), outcome)
                }
                Plan::Forward {
                    route,
                    request,
                    extras,
                } => {
                    let fwd = Forwarded {
                        snapshot: &snapshot,
                        route,
                        request: &request,
                        extras: &extras,
                        meta: &meta,
                        started_at,
                    };
                    let exchange = exchange_for(&conn, &fwd);
                    // The exchange starts with the request (what lies between is a
                    // few field reads): one clock read fewer per request.
                    let backend_start = started_at;
                    let result = match http_backend(&fwd) {
                        Ok(backend) => {
                            let (result, relayed) =
                                forward(&exchange, client, backend, &request, out).await;
                            out = relayed;
                            result
                        }
                        Err(e) => Err(e),
                    };
                    let backend_time = backend_start.elapsed();
                    let upgraded = exchange.upgraded.take();
                    match settle(&conn, &fwd, result, &mut out, backend_time) {
                        Settled::Done(next, mut outcome) => {
                            if let Some(upstream) = upgraded {
                                // Boxed: rare, and as long-lived as the WebSocket.
                                Box::pin(websocket::run(
                                    &conn,
                                    client,
                                    upstream,
                                    &fwd,
                                    &mut outcome,
                                ))
                                .await;
                            }
                            (next, outcome)
                        }
                        Settled::Answer {
                            keep_alive,
                            status,
                            bytes_out,
                        } => {
                            let (written, sent) =
                                conn.write_answer(client, out, send, !keep_alive).await;
                            out = sent;
                            let decision = Decision::for_exchange_status(status);
                            let outcome = outcome(
                                status,
                                decision,
                                &meta,
                                bytes_out,
                                started_at,
                                Some(backend_time),
                            );
                            (Next::after(written, keep_alive), outcome)
                        }
                    }
                }
            };
            buffers.out = out;
            ctx.finish(&snapshot, &meta, &outcome, &buffers.log);
            next
        };
        if next != Next::KeepAlive {
            return next;
        }
        if client.pending().is_empty() {
            // The read buffer goes back to the worker meanwhile (most of
            // what a connection holds); a drain cuts this wait short like
            // any idle wait.
            ctx.reclaim_read_buffer(client);
            let keep_alive = ctx.snapshot().timeouts.keep_alive;
            let deadline = timer.deadlines().after(BUSY_WINDOW.min(keep_alive));
            timer.set_idle(true);
            let ready = timer.within(deadline, client.stream.readable()).await;
            timer.set_idle(false);
            match ready {
                Ok(Ok(())) => {
                    client.provide_buffer(|| ctx.take_buffer());
                    client.note_readable();
                }
                Ok(Err(_)) => return Next::Close,
                Err(_) => return Next::KeepAlive,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    /// The size of the future an `async fn` of five arguments returns, without calling it.
    fn future_size<A, F: Future>(_: fn(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The size of one request's future, without calling `serve_request`.
    fn request_future_size<'a, F: Future>(
        _: fn(&'a Rc<WorkerCtx>, &'a mut BufferedStream, &'a TaskTimer, &'a Peer, usize) -> F,
    ) -> usize {
        std::mem::size_of::<F>()
    }

    // The connection task's future is what an idle keep-alive connection holds.
    #[test]
    fn connection_future_size() {
        let size = future_size(serve);
        println!("connection task future: {size} bytes");
        // 3,248 bytes when the request's state was part of it (test build).
        println!(
            "busy-period future (boxed once per busy period): {} bytes",
            request_future_size(serve_busy)
        );
        assert!(
            size <= 1024,
            "the idle connection task grew to {size} bytes"
        );
        println!(
            "peer {} client {} timer {} connection {}",
            std::mem::size_of::<Peer>(),
            std::mem::size_of::<BufferedStream>(),
            std::mem::size_of::<TaskTimer>(),
            std::mem::size_of::<Connection>(),
        );
    }
}
