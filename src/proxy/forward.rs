//! One exchange with an HTTP back end: acquire a connection, send the request
//! head and stream its body (framing re-checked, chunked re-encoded), read the
//! response head (interim 1xx skipped), relay the body with framing the client
//! can trust, and decide whether each connection may be kept.
//!
//! A request that fails on a reused pooled connection before any response byte
//! arrives is retried once on a fresh connection when it is idempotent and has
//! no body. A back end that ends a body early never looks complete to the
//! client: the client connection is closed mid-body.

use super::pool::{UpstreamPool, UPSTREAM_READ_CAPACITY};
use super::rewrite::{write_client_response, ClientFraming};
use super::{ForwardError, Side};
use crate::buffered::{write_all_within, BufferedStream, IoFailure, BODY_READ_CAPACITY};
use crate::deadline::{ticks, TaskTimer};
use crate::http::chunked::{encode_chunk, ChunkedDecoder, LAST_CHUNK};
use crate::http::respond::{Persistence, CONTINUE};
use crate::http::response::{parse_response, response_header_storage, ParsedResponse};
use crate::http::{BodyFraming, Version};
use crate::record::RequestId;
use crate::snapshot::{ClientTimeouts, HttpBackendSpec, PoolSettings};
use monoio::net::TcpStream;

/// Response heads larger than this are refused (502).
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Flush the output buffer to the peer once it holds this much.
const FLUSH_AT: usize = 32 * 1024;

/// What the exchange needs to know about the client's request.
#[derive(Debug, Clone, Copy)]
pub struct ForwardRequest {
    pub body: BodyFraming,
    pub idempotent: bool,
    pub head_request: bool,
    pub expect_continue: bool,
    pub client_version: Version,
    /// The client wants (and may have) another request on this connection.
    pub client_keep_alive: bool,
    pub max_body: u64,
    /// Echoed to the client in the response.
    pub request_id: RequestId,
}

/// The worker state an exchange uses.
pub struct Exchange<'a> {
    pub pool: &'a UpstreamPool,
    pub pool_settings: PoolSettings,
    pub timeouts: ClientTimeouts,
    /// The client task's timer; bounds every read, write and connect.
    pub timer: &'a TaskTimer,
    /// Response bytes written to the client so far.
    pub written: std::cell::Cell<u64>,
}

impl Exchange<'_> {
    fn deadline(&self, limit: std::time::Duration) -> crate::deadline::Tick {
        self.timer.deadlines().after(limit)
    }
}

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

/// Why an exchange stopped.
#[derive(Debug)]
enum Failure {
    /// The back end failed (status 502 or 504).
    Upstream(ForwardError),
    /// The client failed or broke a rule while sending its body.
    Client(ForwardError),
    /// Nothing arrived on a reused connection: try once more on a fresh one.
    Retry,
}

impl Failure {
    fn into_error(self, body_pending: bool) -> ForwardError {
        match self {
            Failure::Upstream(mut e) => {
                e.request_unfinished |= body_pending;
                e
            }
            Failure::Client(e) => e,
            Failure::Retry => ForwardError::upstream(502, "back end closed the connection"),
        }
    }
}

async fn acquire(
    ex: &Exchange<'_>,
    backend: &HttpBackendSpec,
) -> Result<(BufferedStream, bool), ForwardError> {
    if backend.tls {
        return Err(ForwardError::upstream(
            502,
            "https back ends are not supported by this build",
        ));
    }
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
                TcpStream::connect_addr(addr),
            )
            .await
        {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok((BufferedStream::new(stream, UPSTREAM_READ_CAPACITY), false));
            }
            Ok(Err(_)) => last = ForwardError::upstream(502, "back end refused the connection"),
            Err(_) => last = ForwardError::upstream(504, "back-end connect timed out"),
        }
    }
    Err(last)
}

/// Writes `out` to the back end, mapping failures.
async fn write_upstream(
    ex: &Exchange<'_>,
    upstream: &mut BufferedStream,
    backend: &HttpBackendSpec,
    out: Vec<u8>,
) -> (Result<(), Failure>, Vec<u8>) {
    let deadline = ex.deadline(backend.send_timeout);
    let (result, out) = write_all_within(&mut upstream.stream, out, ex.timer, deadline).await;
    let result = result.map_err(|f| match f {
        IoFailure::TimedOut => Failure::Upstream(ForwardError::upstream(
            504,
            "back end too slow to accept the request",
        )),
        _ => Failure::Upstream(ForwardError::upstream(502, "back end reset the connection")),
    });
    (result, out)
}

/// Reads more of the request body from the client.
async fn read_body(ex: &Exchange<'_>, client: &mut BufferedStream) -> Result<(), Failure> {
    let deadline = ex.deadline(ex.timeouts.body);
    match client
        .read_more(BODY_READ_CAPACITY, ex.timer, deadline)
        .await
    {
        Ok(_) => Ok(()),
        Err(IoFailure::TimedOut) => Err(Failure::Client(ForwardError::client(
            408,
            "request body timed out",
        ))),
        Err(_) => Err(Failure::Client(ForwardError::aborted(
            Side::Client,
            "client closed during the request body",
        ))),
    }
}

/// Sends `100 Continue` before the first read of a body the client holds back.
async fn send_continue(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    out: Vec<u8>,
) -> (Result<(), Failure>, Vec<u8>) {
    let mut interim = Vec::with_capacity(CONTINUE.len());
    interim.extend_from_slice(CONTINUE);
    let (result, _) = client
        .write_all(interim, ex.timer, ex.deadline(ex.timeouts.send))
        .await;
    (
        result.map_err(|_| {
            Failure::Client(ForwardError::aborted(
                Side::Client,
                "client closed before its body",
            ))
        }),
        out,
    )
}

/// Sends the head in `out` and the request body.
async fn send_request(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    upstream: &mut BufferedStream,
    backend: &HttpBackendSpec,
    req: &ForwardRequest,
    out: Vec<u8>,
) -> (Result<(), Failure>, Vec<u8>) {
    match req.body {
        BodyFraming::None | BodyFraming::UntilClose => {
            write_upstream(ex, upstream, backend, out).await
        }
        BodyFraming::Length(n) => {
            send_length_body(ex, client, upstream, backend, req, out, n).await
        }
        BodyFraming::Chunked => send_chunked_body(ex, client, upstream, backend, req, out).await,
    }
}

async fn send_length_body(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    upstream: &mut BufferedStream,
    backend: &HttpBackendSpec,
    req: &ForwardRequest,
    mut out: Vec<u8>,
    length: u64,
) -> (Result<(), Failure>, Vec<u8>) {
    let mut remaining = length;
    let mut continue_due = req.expect_continue && client.pending().is_empty();
    loop {
        let take = remaining.min(client.pending().len() as u64) as usize;
        out.extend_from_slice(&client.pending()[..take]);
        client.consume(take);
        remaining -= take as u64;
        if !out.is_empty()
            && (remaining == 0 || out.len() >= FLUSH_AT || client.pending().is_empty())
        {
            let (result, mut written) = write_upstream(ex, upstream, backend, out).await;
            written.clear();
            out = written;
            if let Err(f) = result {
                return (Err(f), out);
            }
        }
        if remaining == 0 {
            return (Ok(()), out);
        }
        if continue_due {
            continue_due = false;
            let (result, o) = send_continue(ex, client, out).await;
            out = o;
            if let Err(f) = result {
                return (Err(f), out);
            }
        }
        if let Err(f) = read_body(ex, client).await {
            return (Err(f), out);
        }
    }
}

async fn send_chunked_body(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    upstream: &mut BufferedStream,
    backend: &HttpBackendSpec,
    req: &ForwardRequest,
    mut out: Vec<u8>,
) -> (Result<(), Failure>, Vec<u8>) {
    let mut decoder = ChunkedDecoder::new();
    let mut continue_due = req.expect_continue && client.pending().is_empty();
    loop {
        let mut done = false;
        loop {
            let decoded = match decoder.decode(client.pending()) {
                Ok(d) => d,
                Err(_) => {
                    return (
                        Err(Failure::Client(ForwardError::client(
                            400,
                            "malformed chunked body",
                        ))),
                        out,
                    )
                }
            };
            if let Some(range) = decoded.data.clone() {
                encode_chunk(&mut out, &client.pending()[range]);
            }
            client.consume(decoded.consumed);
            if decoder.body_bytes() > req.max_body {
                return (
                    Err(Failure::Client(ForwardError::client(
                        413,
                        "chunked body over the limit",
                    ))),
                    out,
                );
            }
            if decoded.done {
                out.extend_from_slice(LAST_CHUNK);
                done = true;
                break;
            }
            if decoded.consumed == 0 && decoded.data.is_none() {
                break;
            }
        }
        if !out.is_empty() {
            let (result, mut written) = write_upstream(ex, upstream, backend, out).await;
            written.clear();
            out = written;
            if let Err(f) = result {
                return (Err(f), out);
            }
        }
        if done {
            return (Ok(()), out);
        }
        if continue_due {
            continue_due = false;
            let (result, o) = send_continue(ex, client, out).await;
            out = o;
            if let Err(f) = result {
                return (Err(f), out);
            }
        }
        if let Err(f) = read_body(ex, client).await {
            return (Err(f), out);
        }
    }
}

/// A response relayed to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// The client connection stays open.
    pub keep_alive: bool,
    /// The back end's status code.
    pub status: u16,
    /// Bytes written to the client (head and body).
    pub bytes_out: u64,
}

/// What the final response head decided.
struct ResponsePlan {
    status: u16,
    upstream_body: BodyFraming,
    client_framing: ClientFraming,
    persistence: Persistence,
    upstream_close: bool,
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

fn client_framing(upstream: BodyFraming, client: Version) -> ClientFraming {
    match (upstream, client) {
        (BodyFraming::None, _) => ClientFraming::None,
        (BodyFraming::Length(n), _) => ClientFraming::Length(n),
        (BodyFraming::Chunked | BodyFraming::UntilClose, Version::Http11) => ClientFraming::Chunked,
        (BodyFraming::Chunked | BodyFraming::UntilClose, Version::Http10) => {
            ClientFraming::UntilClose
        }
    }
}

/// Writes `out` to the client; a failure means the client is gone.
async fn write_client(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    out: Vec<u8>,
) -> (Result<(), Failure>, Vec<u8>) {
    let len = out.len() as u64;
    let (result, mut out) = client
        .write_all(out, ex.timer, ex.deadline(ex.timeouts.send))
        .await;
    if result.is_ok() {
        ex.written.set(ex.written.get() + len);
    }
    out.clear();
    (
        result.map_err(|_| {
            Failure::Client(ForwardError::aborted(
                Side::Client,
                "client went away during the response",
            ))
        }),
        out,
    )
}

/// Reads more of the response body; any failure aborts the client connection.
async fn read_upstream_body(
    ex: &Exchange<'_>,
    upstream: &mut BufferedStream,
    backend: &HttpBackendSpec,
    until_close: bool,
) -> Result<bool, Failure> {
    let deadline = ex.deadline(backend.read_timeout);
    match upstream
        .read_more(UPSTREAM_READ_CAPACITY, ex.timer, deadline)
        .await
    {
        Ok(_) => Ok(true),
        Err(IoFailure::Closed) if until_close => Ok(false),
        Err(IoFailure::TimedOut) => Err(Failure::Upstream(ForwardError::aborted(
            Side::Upstream,
            "back end stalled mid-body",
        ))),
        Err(_) => Err(Failure::Upstream(ForwardError::aborted(
            Side::Upstream,
            "back end closed mid-body",
        ))),
    }
}

/// Progress of moving buffered response bytes into the client's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// The body is complete.
    Finished,
    /// Everything buffered was taken: read more from the back end.
    NeedInput,
    /// `out` is full: flush it, then keep going with what is buffered.
    Flush,
}

/// Frames the response body for the client as it arrives from the back end.
struct BodyRelay {
    framing: BodyFraming,
    chunk_to_client: bool,
    remaining: u64,
    decoder: ChunkedDecoder,
}

impl BodyRelay {
    fn new(plan: &ResponsePlan) -> Self {
        BodyRelay {
            framing: plan.upstream_body,
            chunk_to_client: plan.client_framing == ClientFraming::Chunked,
            remaining: match plan.upstream_body {
                BodyFraming::Length(n) => n,
                _ => 0,
            },
            decoder: ChunkedDecoder::new(),
        }
    }

    /// Moves what `upstream` has buffered into `out`, framed for the client.
    fn step(
        &mut self,
        upstream: &mut BufferedStream,
        out: &mut Vec<u8>,
    ) -> Result<Progress, Failure> {
        match self.framing {
            BodyFraming::None => Ok(Progress::Finished),
            BodyFraming::Length(_) => {
                let take = self.remaining.min(upstream.pending().len() as u64) as usize;
                out.extend_from_slice(&upstream.pending()[..take]);
                upstream.consume(take);
                self.remaining -= take as u64;
                Ok(if self.remaining == 0 {
                    Progress::Finished
                } else {
                    Progress::NeedInput
                })
            }
            BodyFraming::UntilClose => {
                let pending = upstream.pending();
                self.emit(out, pending);
                let n = pending.len();
                upstream.consume(n);
                Ok(Progress::NeedInput)
            }
            BodyFraming::Chunked => loop {
                let decoded = self.decoder.decode(upstream.pending()).map_err(|_| {
                    Failure::Upstream(ForwardError::aborted(
                        Side::Upstream,
                        "malformed chunked response",
                    ))
                })?;
                if let Some(range) = decoded.data.clone() {
                    self.emit(out, &upstream.pending()[range]);
                }
                upstream.consume(decoded.consumed);
                if decoded.done {
                    return Ok(Progress::Finished);
                }
                if decoded.consumed == 0 && decoded.data.is_none() {
                    return Ok(Progress::NeedInput);
                }
                if out.len() >= FLUSH_AT {
                    return Ok(Progress::Flush);
                }
            },
        }
    }

    fn emit(&self, out: &mut Vec<u8>, data: &[u8]) {
        if self.chunk_to_client {
            encode_chunk(out, data);
        } else {
            out.extend_from_slice(data);
        }
    }

    /// Appends the end of the body, if the client's framing has one.
    fn finish(&self, out: &mut Vec<u8>) {
        if self.chunk_to_client {
            out.extend_from_slice(LAST_CHUNK);
        }
    }
}

/// Relays the response body after the head already in `out`.
async fn relay_body(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    upstream: &mut BufferedStream,
    backend: &HttpBackendSpec,
    plan: &ResponsePlan,
    mut out: Vec<u8>,
) -> (Result<(), Failure>, Vec<u8>) {
    let mut relay = BodyRelay::new(plan);
    let until_close = plan.upstream_body == BodyFraming::UntilClose;
    loop {
        let progress = match relay.step(upstream, &mut out) {
            Ok(p) => p,
            Err(f) => return (Err(f), out),
        };
        if progress == Progress::Finished {
            relay.finish(&mut out);
            return write_client(ex, client, out).await;
        }
        if !out.is_empty() {
            let (result, o) = write_client(ex, client, out).await;
            out = o;
            if let Err(f) = result {
                return (Err(f), out);
            }
        }
        if progress == Progress::Flush {
            continue;
        }
        match read_upstream_body(ex, upstream, backend, until_close).await {
            Ok(true) => {}
            Ok(false) => {
                relay.finish(&mut out);
                return write_client(ex, client, out).await;
            }
            Err(f) => return (Err(f), out),
        }
    }
}
