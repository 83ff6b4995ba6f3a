//! Relaying a response body to the client with framing the client can trust:
//! Content-Length bodies copied through, chunked bodies decoded and re-encoded
//! (or unchunked for HTTP/1.0 clients), close-delimited bodies re-framed as
//! chunked. A back end that ends a body early aborts the client connection.

use super::exchange::{Exchange, Failure, ResponsePlan, FLUSH_AT};
use super::pool::UPSTREAM_READ_CAPACITY;
use super::rewrite::ClientFraming;
use super::{ForwardError, Side};
use crate::http::chunked::{encode_chunk, ChunkedDecoder, LAST_CHUNK};
use crate::http::{BodyFraming, Version};
use crate::io::buffered::{BufferedStream, IoFailure};
use crate::snapshot::HttpBackendSpec;

pub(super) fn client_framing(upstream: BodyFraming, client: Version) -> ClientFraming {
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
pub(super) async fn relay_body(
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
