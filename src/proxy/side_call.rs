//! A side call: one small request to a remote authentication service (an
//! HTTP authorizer) on the worker's own runtime and upstream pool, the
//! answer read whole. No extra thread, no blocking: the client task awaits
//! it like a back-end exchange, bounded by one deadline for connect, write
//! and read together.
//!
//! The answer must be framed by `Content-Length` (or end with the
//! connection); it is capped at [`MAX_ANSWER`]. A connection whose answer
//! was read to its end goes back to the pool; a reused pooled connection
//! that the service had closed is replaced once by a fresh one.

use super::pool::{UpstreamPool, UPSTREAM_READ_CAPACITY};
use crate::http::response::{parse_response, response_header_storage, ParsedResponse};
use crate::http::BodyFraming;
use crate::io::buffered::{BufferedStream, IoFailure};
use crate::io::transport::Transport;
use crate::policy::auth::remote::RemoteCall;
use crate::policy::auth::remote_target::{RemoteTarget, SideAnswer};
use crate::snapshot::PoolSettings;
use crate::time::deadline::{ticks, TaskTimer, Tick};

/// Largest answer (head and body) accepted.
pub const MAX_ANSWER: usize = 64 * 1024;

/// POSTs `body` to the service and reads the answer within its timeout.
/// Errors say why, for the log; they never hold the body.
pub async fn call(
    pool: &UpstreamPool,
    settings: PoolSettings,
    timer: &TaskTimer,
    remote: &RemoteCall,
    body: &[u8],
) -> Result<SideAnswer, &'static str> {
    let target = &remote.target;
    let deadline = timer.deadlines().after(remote.timeout);
    let mut request = Vec::with_capacity(256 + body.len());
    request.extend_from_slice(b"POST ");
    request.extend_from_slice(target.target.as_bytes());
    request.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    request.extend_from_slice(target.authority.as_bytes());
    request.extend_from_slice(b"\r\nContent-Type: ");
    request.extend_from_slice(remote.content_type.as_bytes());
    request.extend_from_slice(b"\r\nAccept: application/json\r\n");
    if let Some(fields) = &remote.fields {
        request.extend_from_slice(fields.expose().as_bytes());
    }
    crate::http::respond::write_content_length(&mut request, body.len() as u64);
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    let mut retried = false;
    loop {
        let (mut conn, reused) = open(pool, settings, timer, target, deadline).await?;
        let (written, back) = conn.write_all(request, timer, deadline).await;
        request = back;
        let result = match written {
            Ok(()) => read_answer(&mut conn, timer, deadline).await,
            Err(IoFailure::TimedOut) => return Err("authorizer call timed out"),
            Err(_) => Err(Failed::Closed),
        };
        match result {
            Ok((answer, keep)) => {
                if keep {
                    let now = timer.deadlines().now();
                    let idle = ticks(settings.idle_timeout);
                    pool.checkin(
                        &target.pool_key,
                        conn,
                        settings.max_idle_per_backend,
                        idle,
                        now,
                    );
                }
                return Ok(answer);
            }
            Err(Failed::Closed) if reused && !retried && !request.is_empty() => retried = true,
            Err(Failed::Closed) => return Err("authorizer closed the connection"),
            Err(Failed::Because(reason)) => return Err(reason),
        }
    }
}

enum Failed {
    /// Closed before any answer byte (a stale pooled connection, maybe).
    Closed,
    Because(&'static str),
}

async fn open(
    pool: &UpstreamPool,
    settings: PoolSettings,
    timer: &TaskTimer,
    target: &RemoteTarget,
    deadline: Tick,
) -> Result<(BufferedStream, bool), &'static str> {
    let now = timer.deadlines().now();
    if let Some(conn) = pool.checkout(&target.pool_key, ticks(settings.idle_timeout), now) {
        return Ok((conn, true));
    }
    let mut last = "authorizer host did not resolve";
    for &addr in &target.addrs {
        let connect = crate::io::connect::connect(addr, pool.nonblocking_sockets());
        match timer.within(deadline, connect).await {
            Ok(Ok((stream, probe))) => {
                let _ = stream.set_nodelay(true);
                let transport = match &target.tls {
                    None => Transport::Plain(stream),
                    Some(tls) => Box::pin(crate::tls::connect(tls, stream, timer, deadline))
                        .await
                        .map_err(|_| "authorizer TLS handshake failed")?,
                };
                let mut conn = BufferedStream::new(transport, UPSTREAM_READ_CAPACITY);
                conn.handle = Some(probe);
                return Ok((conn, false));
            }
            Ok(Err(_)) => last = "authorizer refused the connection",
            Err(_) => return Err("authorizer connect timed out"),
        }
    }
    Err(last)
}

/// Reads one whole answer: it and whether the connection may be reused.
async fn read_answer(
    conn: &mut BufferedStream,
    timer: &TaskTimer,
    deadline: Tick,
) -> Result<(SideAnswer, bool), Failed> {
    let mut received = false;
    let (mut answer, framing, close) = loop {
        if !conn.pending().is_empty() {
            let mut storage = response_header_storage();
            match parse_response(conn.pending(), false, &mut storage) {
                Err(_) => return Err(Failed::Because("authorizer sent an invalid answer")),
                Ok(ParsedResponse::Interim(n)) => {
                    conn.consume(n);
                    continue;
                }
                Ok(ParsedResponse::Partial) if conn.pending().len() >= MAX_ANSWER => {
                    return Err(Failed::Because("authorizer answer too large"))
                }
                Ok(ParsedResponse::Partial) => {}
                Ok(ParsedResponse::Final(head)) if head.status == 101 => {
                    return Err(Failed::Because("authorizer switched protocols"))
                }
                Ok(ParsedResponse::Final(head)) => {
                    let mut challenge = Vec::new();
                    for h in head.headers {
                        if h.name.eq_ignore_ascii_case("www-authenticate") {
                            challenge.extend_from_slice(b"WWW-Authenticate: ");
                            challenge.extend_from_slice(h.value);
                            challenge.extend_from_slice(b"\r\n");
                        }
                    }
                    let answer = SideAnswer {
                        status: head.status,
                        challenge,
                        body: Vec::new(),
                    };
                    let (len, framing, close) = (head.len, head.body, head.close);
                    conn.consume(len);
                    break (answer, framing, close);
                }
            }
        }
        match conn
            .read_more(UPSTREAM_READ_CAPACITY, timer, deadline)
            .await
        {
            Ok(_) => received = true,
            Err(IoFailure::TimedOut) => return Err(Failed::Because("authorizer call timed out")),
            Err(_) if !received => return Err(Failed::Closed),
            Err(_) => return Err(Failed::Because("authorizer closed before answering")),
        }
    };
    let want = match framing {
        BodyFraming::None => Some(0),
        BodyFraming::Length(n) if n as usize <= MAX_ANSWER => Some(n as usize),
        BodyFraming::Length(_) => return Err(Failed::Because("authorizer answer too large")),
        BodyFraming::Chunked => return Err(Failed::Because("authorizer answer is chunked")),
        BodyFraming::UntilClose => None,
    };
    loop {
        if want.is_some_and(|n| conn.pending().len() >= n) {
            let n = want.unwrap_or(0);
            answer.body = conn.pending()[..n].to_vec();
            conn.consume(n);
            let keep = !close && conn.pending().is_empty();
            return Ok((answer, keep));
        }
        if conn.pending().len() > MAX_ANSWER {
            return Err(Failed::Because("authorizer answer too large"));
        }
        match conn
            .read_more(UPSTREAM_READ_CAPACITY, timer, deadline)
            .await
        {
            Ok(_) => {}
            Err(IoFailure::Closed) if want.is_none() => {
                answer.body = conn.pending().to_vec();
                return Ok((answer, false));
            }
            Err(IoFailure::TimedOut) => return Err(Failed::Because("authorizer call timed out")),
            Err(_) => return Err(Failed::Because("authorizer closed mid-answer")),
        }
    }
}
