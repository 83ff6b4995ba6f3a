//! One exchange with an HTTP back end: choose a server (`balance`), acquire
//! a connection, send the request head and its body (`request_body`), read
//! the response head (interim 1xx skipped), relay the body (`response_body`),
//! and decide whether each connection may be kept.
//!
//! A try that fails before any response byte reached the client goes to
//! another server (`retry`): always when nothing was sent (connect failure),
//! and for bodiless idempotent requests when the server reset the connection
//! or answered a status listed in `retry.statuses` — up to `retry.attempts`
//! tries, within the worker's retry budget. Each try's outcome feeds the
//! server's passive health (`health`); no server available answers 503 with
//! `Retry-After` at once. A request that fails on a reused pooled connection
//! before any response byte arrives is sent once more, outside the budget, on
//! the next connection the pool gives. A back end that ends a body early never
//! looks complete to the client: the client connection is closed mid-body.

use super::balance::Tried;
use super::breaker::{enter_backend, enter_server};
use super::exchange::{Exchange, Failure, ForwardRequest, Relayed};
use super::health;
use super::pool::UPSTREAM_READ_CAPACITY;
use super::request_body::send_request;
use super::response_body::relay_body;
use super::response_head::{take_head, HeadStep};
use super::ForwardError;
use crate::http::BodyFraming;
use crate::io::buffered::{BufferedStream, IoFailure};
use crate::io::transport::Transport;
use crate::snapshot::servers::ServerSpec;
use crate::snapshot::HttpBackendSpec;
use crate::time::deadline::ticks;
use std::sync::atomic::Ordering::Relaxed;
use tracing::warn;

/// Sends the request whose rewritten head is in `out` and relays the response.
/// Returns what was relayed (keep-alive decision and status), and `out` for reuse.
pub async fn forward(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    backend: &HttpBackendSpec,
    req: &ForwardRequest,
    mut out: Vec<u8>,
) -> (Result<Relayed, ForwardError>, Vec<u8>) {
    let body_pending = req.body != BodyFraming::None;
    let _entry = match enter_backend(backend) {
        Ok(entry) => entry,
        Err(mut e) => {
            e.retry_after = 1;
            e.request_unfinished = body_pending;
            return (Err(e), out);
        }
    };
    let resendable = super::retry::resendable(
        &backend.retry,
        req.idempotent,
        req.idempotency_key,
        !body_pending,
    );
    let mut tried = Tried::default();
    let mut tries = 1;
    let mut stale_retried = false;
    let mut last: Option<ForwardError> = None;
    loop {
        let Some(index) = ex.balance.pick(ex.slot, backend, req.balance_hash, tried) else {
            // No server left to try: 503 with `Retry-After`, unless the back
            // end's only server answered with a failure of its own.
            let mut e = match last {
                Some(e) if backend.servers.len() == 1 => e,
                _ => ForwardError {
                    retry_after: health::seconds_until_return(backend) as u32,
                    ..ForwardError::upstream(503, "no server of the back end is available")
                },
            };
            e.request_unfinished |= body_pending;
            return (Err(e), out);
        };
        let server = enter_server(ex.balance, ex.slot, backend, index);
        let spec = &backend.servers[index];
        let again = |sent: bool, tried: &mut Tried, tries: &mut u32| {
            tried.add(index);
            fail_over(
                ex,
                backend,
                index,
                (!sent || resendable) && *tries < backend.retry.attempts,
            ) && {
                *tries += 1;
                true
            }
        };
        let (mut upstream, reused) = match acquire(ex, backend, spec).await {
            Ok(conn) => conn,
            Err(e) => {
                health::failed(backend, index);
                if again(false, &mut tried, &mut tries) {
                    last = Some(e);
                    continue;
                }
                // The request body (if any) was not read: the client
                // connection cannot carry another request.
                let e = match backend.servers.len() {
                    1 => e,
                    // No server of several took the connection: unavailable.
                    _ => ForwardError {
                        retry_after: health::seconds_until_return(backend) as u32,
                        ..ForwardError::upstream(503, "no server of the back end is available")
                    },
                };
                return (Err(Failure::Upstream(e).into_error(body_pending)), out);
            }
        };
        let may_retry = reused && resendable && !stale_retried;
        out = match send_request(ex, client, &mut upstream, backend, req, out).await {
            (Ok(()), out) => out,
            // A timed-out write keeps no copy of the head: no retry then.
            (Err(Failure::Upstream(_)), head) if may_retry && !head.is_empty() => {
                out = head;
                stale_retried = true;
                continue;
            }
            (Err(failure), out) => {
                if matches!(failure, Failure::Upstream(_)) {
                    health::failed(backend, index);
                }
                return (Err(failure.into_error(body_pending)), out);
            }
        };
        // A retried status must be decided before anything reaches the
        // client: the retry is taken from the budget now, and given back if
        // the answer is kept.
        let retry_possible =
            resendable && tries < backend.retry.attempts && backend.servers.len() > 1;
        let reserved = retry_possible && ex.balance.take_retry(ex.slot, backend);
        let this_try = ThisTry {
            server: spec,
            may_retry,
            retry_status: reserved,
        };
        let result = relay_response(ex, client, upstream, backend, req, out, &this_try).await;
        if reserved && !matches!(result.0, Err(Failure::RetryStatus)) {
            ex.balance.give_back_retry(ex.slot, backend);
        }
        match result {
            // `out` still holds the request head: nothing of the response was read.
            (Err(Failure::Retry), head) => {
                out = head;
                stale_retried = true;
            }
            (Err(Failure::RetryStatus), head) => {
                health::failed(backend, index);
                spec.health.retries_total.fetch_add(1, Relaxed);
                tried.add(index);
                tries += 1;
                last = Some(Failure::RetryStatus.into_error(false));
                out = head;
            }
            (Err(failure @ Failure::Unanswered(_)), head) => {
                health::failed(backend, index);
                let error = failure.into_error(false);
                if !head.is_empty() && again(true, &mut tried, &mut tries) {
                    last = Some(error);
                    out = head;
                    continue;
                }
                return (Err(error), head);
            }
            (result, out) => {
                match &result {
                    Ok(relayed) if relayed.status < 500 => health::succeeded(backend, index),
                    Ok(relayed) => {
                        health::failed(backend, index);
                        if retry_possible
                            && !reserved
                            && backend.retry.statuses.contains(&relayed.status)
                        {
                            spec.health.budget_exhausted_total.fetch_add(1, Relaxed);
                        }
                    }
                    Err(Failure::Upstream(_)) => health::failed(backend, index),
                    Err(_) => {}
                }
                drop(server);
                return (result.map_err(|f| f.into_error(false)), out);
            }
        }
    }
}

/// Whether a failed try on server `index` may go to another server: the
/// request allows it and the worker's retry budget holds a retry. Counted in
/// the server's metrics either way.
fn fail_over(ex: &Exchange<'_>, backend: &HttpBackendSpec, index: usize, allowed: bool) -> bool {
    if !allowed || backend.servers.len() < 2 {
        return false;
    }
    let health = &backend.servers[index].health;
    if !ex.balance.take_retry(ex.slot, backend) {
        health.budget_exhausted_total.fetch_add(1, Relaxed);
        return false;
    }
    health.retries_total.fetch_add(1, Relaxed);
    true
}

/// What relaying a try's response needs to know about the try.
struct ThisTry<'s> {
    server: &'s ServerSpec,
    /// A failure before any byte may be retried on a fresh connection.
    may_retry: bool,
    /// A status listed in `retry.statuses` may be retried on another server.
    retry_status: bool,
}

async fn acquire(
    ex: &Exchange<'_>,
    backend: &HttpBackendSpec,
    server: &ServerSpec,
) -> Result<(BufferedStream, bool), ForwardError> {
    if let Some(conn) = ex.pool.checkout(
        &server.pool_key,
        ticks(ex.pool_settings.idle_timeout),
        ex.timer.deadlines().now(),
    ) {
        return Ok((conn, true));
    }
    let mut last = ForwardError::upstream(502, "back-end host did not resolve");
    for &addr in server.addr.iter() {
        match ex
            .timer
            .within(
                ex.deadline(backend.connect_timeout),
                crate::io::connect::connect(addr, ex.pool.nonblocking_sockets()),
            )
            .await
        {
            Ok(Ok((stream, probe))) => {
                let _ = stream.set_nodelay(true);
                let transport = match &server.tls_client {
                    None => Transport::Plain(stream),
                    Some(tls) => {
                        let deadline = ex.deadline(backend.connect_timeout);
                        match Box::pin(crate::tls::connect(tls, stream, ex.timer, deadline)).await {
                            Ok(transport) => transport,
                            // Never a fallback to plain HTTP: the request fails.
                            Err(reason) => {
                                warn!(backend = %server.pool_key, address = %addr, error = %reason, "back-end TLS handshake failed");
                                return Err(ForwardError::upstream(
                                    502,
                                    "back-end TLS handshake failed",
                                ));
                            }
                        }
                    }
                };
                let mut conn = BufferedStream::new(transport, UPSTREAM_READ_CAPACITY);
                conn.handle = Some(probe);
                return Ok((conn, false));
            }
            Ok(Err(_)) => last = ForwardError::upstream(502, "back end refused the connection"),
            Err(_) => last = ForwardError::upstream(504, "back-end connect timed out"),
        }
    }
    Err(last)
}

/// Reads the response head, writes the client head into `out`, relays the body.
async fn relay_response(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    mut upstream: BufferedStream,
    backend: &HttpBackendSpec,
    req: &ForwardRequest,
    mut out: Vec<u8>,
    this_try: &ThisTry<'_>,
) -> (Result<Relayed, Failure>, Vec<u8>) {
    let (may_retry, retry_status) = (this_try.may_retry, this_try.retry_status);
    let mut received_any = false;
    let plan = loop {
        if !upstream.pending().is_empty() {
            // Synchronous: the 4 KiB of header slots live only in its frame,
            // not in this future (which every request moves into place).
            match take_head(ex, &mut upstream, backend, req, retry_status, &mut out) {
                HeadStep::Failed(failure) => return (Err(failure), out),
                HeadStep::Interim(relayed) => {
                    if let Some(head) = relayed {
                        let len = head.len() as u64;
                        let (result, _) = client
                            .write_all(head, ex.timer, ex.deadline(ex.timeouts.send))
                            .await;
                        if result.is_err() {
                            let gone = ForwardError::aborted(
                                super::Side::Client,
                                "client went away during an interim response",
                            );
                            return (Err(Failure::Client(gone)), out);
                        }
                        ex.written.set(ex.written.get() + len);
                    }
                    continue;
                }
                HeadStep::Partial => {}
                HeadStep::Switch => {
                    return super::switch::switch_protocols(ex, client, upstream, out).await;
                }
                HeadStep::Final(plan) => break plan,
            }
        }
        let deadline = ex.deadline(backend.read_timeout);
        match upstream
            .read_more(UPSTREAM_READ_CAPACITY, ex.timer, deadline)
            .await
        {
            Ok(_) => received_any = true,
            Err(IoFailure::TimedOut) => {
                return (
                    Err(Failure::Upstream(ForwardError::upstream(
                        504,
                        "back end did not answer in time",
                    ))),
                    out,
                )
            }
            Err(_) if may_retry && !received_any => return (Err(Failure::Retry), out),
            Err(_) if !received_any => {
                return (
                    Err(Failure::Unanswered(ForwardError::upstream(
                        502,
                        "back end closed before answering",
                    ))),
                    out,
                )
            }
            Err(_) => {
                return (
                    Err(Failure::Upstream(ForwardError::upstream(
                        502,
                        "back end closed before answering",
                    ))),
                    out,
                )
            }
        }
    };
    let (result, out) = relay_body(ex, client, &mut upstream, backend, &plan, out).await;
    let complete = result.is_ok();
    if complete
        && !plan.upstream_close
        && plan.upstream_body != BodyFraming::UntilClose
        && upstream.pending().is_empty()
    {
        ex.pool.checkin(
            &this_try.server.pool_key,
            upstream,
            ex.pool_settings.max_idle_per_backend,
            ticks(ex.pool_settings.idle_timeout),
            ex.timer.deadlines().now(),
        );
    }
    let relayed = Relayed {
        keep_alive: plan.persistence.keeps_alive(),
        status: plan.status,
        bytes_out: ex.written.get(),
    };
    (result.map(|()| relayed), out)
}
