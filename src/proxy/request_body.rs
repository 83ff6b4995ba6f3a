//! Streaming a request body to the back end with its framing re-checked:
//! Content-Length bodies copied through, chunked bodies decoded and re-encoded
//! (never buffered whole), `100 Continue` sent before the first read of a body
//! the client holds back, the body limit enforced as chunks arrive.

use super::exchange::{Exchange, Failure, ForwardRequest, FLUSH_AT};
use super::{ForwardError, Side};
use crate::http::chunked::{encode_chunk, ChunkedDecoder, LAST_CHUNK};
use crate::http::respond::CONTINUE;
use crate::http::BodyFraming;
use crate::io::buffered::{BufferedStream, IoFailure, BODY_READ_CAPACITY};
use crate::snapshot::HttpBackendSpec;

/// Writes `out` to the back end, mapping failures.
pub(super) async fn write_upstream(
    ex: &Exchange<'_>,
    upstream: &mut BufferedStream,
    backend: &HttpBackendSpec,
    out: Vec<u8>,
) -> (Result<(), Failure>, Vec<u8>) {
    let deadline = ex.deadline(backend.send_timeout);
    let (result, out) = upstream.write_all(out, ex.timer, deadline).await;
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
pub(super) async fn send_request(
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
            let (result, flushed) = flush(ex, upstream, backend, out).await;
            out = flushed;
            if let Err(f) = result {
                return (Err(f), out);
            }
        }
        if remaining == 0 {
            return (Ok(()), out);
        }
        let (result, kept) = more_body(ex, client, &mut continue_due, out).await;
        out = kept;
        if let Err(f) = result {
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
            let (result, flushed) = flush(ex, upstream, backend, out).await;
            out = flushed;
            if let Err(f) = result {
                return (Err(f), out);
            }
        }
        if done {
            return (Ok(()), out);
        }
        let (result, kept) = more_body(ex, client, &mut continue_due, out).await;
        out = kept;
        if let Err(f) = result {
            return (Err(f), out);
        }
    }
}

/// Writes `out` to the back end and hands it back emptied.
async fn flush(
    ex: &Exchange<'_>,
    upstream: &mut BufferedStream,
    backend: &HttpBackendSpec,
    out: Vec<u8>,
) -> (Result<(), Failure>, Vec<u8>) {
    let (result, mut written) = write_upstream(ex, upstream, backend, out).await;
    written.clear();
    (result, written)
}

/// Before reading more of the body: `100 Continue` if it is still due, then the read.
async fn more_body(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    continue_due: &mut bool,
    out: Vec<u8>,
) -> (Result<(), Failure>, Vec<u8>) {
    let mut out = out;
    if *continue_due {
        *continue_due = false;
        let (result, kept) = send_continue(ex, client, out).await;
        out = kept;
        if let Err(f) = result {
            return (Err(f), out);
        }
    }
    (read_body(ex, client).await, out)
}
