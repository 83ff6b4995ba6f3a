//! One exchange with an HTTP back end: acquire a connection, send the request
//! head and its body (`request_body`), read the response head (interim 1xx
//! skipped), relay the body (`response_body`), and decide whether each
//! connection may be kept.
//!
//! A request that fails on a reused pooled connection before any response byte
//! arrives is sent once more when it is idempotent and has no body, on the
//! next connection the pool gives (another idle one, or a new one); a request
//! that failed on a new connection is not retried. A back end that ends a body early never looks complete to the
//! client: the client connection is closed mid-body.

use super::exchange::{Exchange, Failure, ForwardRequest, Relayed, ResponsePlan};
use super::pool::UPSTREAM_READ_CAPACITY;
use super::request_body::send_request;
use super::response_body::{client_framing, relay_body};
use super::rewrite::{write_client_response, ClientFraming};
use super::ForwardError;
use crate::http::respond::Persistence;
use crate::http::response::{parse_response, response_header_storage, ParsedResponse};
use crate::http::BodyFraming;
use crate::io::buffered::{BufferedStream, IoFailure};
use crate::io::transport::Transport;
use crate::snapshot::HttpBackendSpec;
use crate::time::deadline::ticks;
use tracing::warn;

/// Response heads larger than this are refused (502).
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Sends the request whose rewritten head is in `out` and relays the response.
/// Returns what was relayed (keep-alive decision and status), and `out` for reuse.
pub async fn forward(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    backend: &HttpBackendSpec,
    req: &ForwardRequest,
    mut out: Vec<u8>,
) -> (Result<Relayed, ForwardError>, Vec<u8>) {
    let retryable = req.idempotent && req.body == BodyFraming::None;
    let mut retried = false;
    loop {
        let (mut upstream, reused) = match acquire(ex, backend).await {
            Ok(conn) => conn,
            // The request body (if any) was not read: the client connection
            // cannot carry another request.
            Err(e) => {
                return (
                    Err(Failure::Upstream(e).into_error(req.body != BodyFraming::None)),
                    out,
                )
            }
        };
        let may_retry = reused && retryable && !retried;
        out = match send_request(ex, client, &mut upstream, backend, req, out).await {
            (Ok(()), out) => out,
            // A timed-out write keeps no copy of the head: no retry then.
            (Err(Failure::Upstream(_)), head) if may_retry && !head.is_empty() => {
                out = head;
                retried = true;
                continue;
            }
            (Err(failure), out) => {
                return (Err(failure.into_error(req.body != BodyFraming::None)), out)
            }
        };
        match relay_response(ex, client, upstream, backend, req, out, may_retry).await {
            // `out` still holds the request head: nothing of the response was read.
            (Err(Failure::Retry), head) => {
                out = head;
                retried = true;
            }
            (result, out) => return (result.map_err(|f| f.into_error(false)), out),
        }
    }
}

async fn acquire(
    ex: &Exchange<'_>,
    backend: &HttpBackendSpec,
) -> Result<(BufferedStream, bool), ForwardError> {
    if let Some(conn) = ex.pool.checkout(
        &backend.pool_key,
        ticks(ex.pool_settings.idle_timeout),
        ex.timer.deadlines().now(),
    ) {
        return Ok((conn, true));
    }
    let mut last = ForwardError::upstream(502, "back-end host did not resolve");
    for &addr in &backend.addrs {
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
                let transport = match &backend.tls_client {
                    None => Transport::Plain(stream),
                    Some(tls) => {
                        let deadline = ex.deadline(backend.connect_timeout);
                        match Box::pin(crate::tls::connect(tls, stream, ex.timer, deadline)).await {
                            Ok(transport) => transport,
                            // Never a fallback to plain HTTP: the request fails.
                            Err(reason) => {
                                warn!(backend = %backend.pool_key, address = %addr, error = %reason, "back-end TLS handshake failed");
                                return Err(ForwardError::upstream(
                                    502,
                                    "back-end TLS handshake failed",
                                ));
                            }
                        }
                    }
                };
                let mut conn = BufferedStream::new(transport, UPSTREAM_READ_CAPACITY);
                conn.idle_probe = Some(probe);
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
    may_retry: bool,
) -> (Result<Relayed, Failure>, Vec<u8>) {
    let mut received_any = false;
    let plan = loop {
        if !upstream.pending().is_empty() {
            let mut headers = response_header_storage();
            match parse_response(upstream.pending(), req.head_request, &mut headers) {
                Err(_) => {
                    return (
                        Err(Failure::Upstream(ForwardError::upstream(
                            502,
                            "invalid response head",
                        ))),
                        out,
                    )
                }
                Ok(ParsedResponse::Interim(n)) => {
                    upstream.consume(n);
                    continue;
                }
                Ok(ParsedResponse::Partial) if upstream.pending().len() >= MAX_RESPONSE_HEAD => {
                    return (
                        Err(Failure::Upstream(ForwardError::upstream(
                            502,
                            "response head too large",
                        ))),
                        out,
                    );
                }
                Ok(ParsedResponse::Partial) => {}
                Ok(ParsedResponse::Final(head)) => {
                    let client_framing = client_framing(head.body, req.client_version);
                    let keep_alive =
                        req.client_keep_alive && client_framing != ClientFraming::UntilClose;
                    let persistence = Persistence::for_client(req.client_version, keep_alive);
                    out.clear();
                    write_client_response(
                        &mut out,
                        &head,
                        client_framing,
                        persistence,
                        &req.request_id,
                        &ex.response_edits,
                    );
                    let plan = ResponsePlan {
                        status: head.status,
                        upstream_body: head.body,
                        client_framing,
                        persistence,
                        upstream_close: head.close,
                    };
                    let len = head.len;
                    upstream.consume(len);
                    break plan;
                }
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
            &backend.pool_key,
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
