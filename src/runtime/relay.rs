//! A planned forward, around the exchange with the route's back end
//! ([`crate::proxy::forward`], awaited by the connection loop itself so that
//! its large future is moved once): what the exchange is given, and how its
//! result settles — the outcome to record, or the gateway's error answer when
//! nothing of the response reached the client. Synchronous on purpose.

use super::scope::{outcome, Conn, Next};
use crate::http::respond::{write_error, Persistence};
use crate::policy::headers::edits::ResponseExtras;
use crate::proxy::exchange::{Exchange, ForwardRequest, Relayed};
use crate::proxy::{ForwardError, Side};
use crate::runtime::plan::RequestMeta;
use crate::snapshot::{BackendSpec, HttpBackendSpec, Snapshot};
use crate::telemetry::record::{Decision, Outcome};
use std::time::{Duration, Instant};
use tracing::debug;

/// A planned forward and what its record needs.
pub struct Forwarded<'a> {
    pub snapshot: &'a Snapshot,
    pub route: usize,
    pub request: &'a ForwardRequest,
    pub extras: &'a ResponseExtras,
    pub meta: &'a RequestMeta,
    pub started_at: Instant,
}

/// The exchange's view of the worker and the route (built once per forward).
pub fn exchange_for<'a>(conn: &'a Conn<'_>, fwd: &Forwarded<'a>) -> Exchange<'a> {
    let snapshot = fwd.snapshot;
    let spec = &snapshot.routes[fwd.route];
    Exchange {
        pool: &conn.ctx.pool,
        balance: &conn.ctx.balance,
        slot: crate::proxy::balance::Slot {
            generation: snapshot.generation,
            backend: spec.backend_slot + fwd.meta.case.map_or(0, usize::from),
        },
        pool_settings: snapshot.pool,
        timeouts: snapshot.timeouts,
        timer: conn.timer,
        written: std::cell::Cell::new(0),
        response_edits: crate::policy::headers::ResponseEdits {
            transform: spec.policies.response_headers.as_ref(),
            extras: fwd.extras,
            security: &snapshot.listeners[conn.listener].security,
        },
        upgraded: std::cell::Cell::new(None),
    }
}

/// The route's HTTP back end (a plan forwards only to those; anything else
/// is answered as a failed exchange all the same).
pub fn http_backend<'a>(fwd: &Forwarded<'a>) -> Result<&'a HttpBackendSpec, ForwardError> {
    match fwd.snapshot.routes[fwd.route].backend.case(fwd.meta.case) {
        Some(BackendSpec::Http(backend)) => Ok(backend),
        _ => Err(ForwardError::upstream(502, "route has no HTTP back end")),
    }
}

/// How a forward ended.
pub enum Settled {
    /// Recorded; nothing more to write.
    Done(Next, Outcome),
    /// The gateway's error answer is in the output buffer: write it (then
    /// linger unless the connection is kept), and record the outcome.
    Answer {
        keep_alive: bool,
        status: u16,
        bytes_out: u64,
    },
}

/// Settles an exchange's result: the outcome to record, or the error answer
/// to send when nothing of the response reached the client (written into `out`).
pub fn settle(
    conn: &Conn<'_>,
    fwd: &Forwarded<'_>,
    result: Result<Relayed, ForwardError>,
    out: &mut Vec<u8>,
    backend_time: Duration,
) -> Settled {
    let record = |status, decision, bytes_out| {
        outcome(
            status,
            decision,
            fwd.meta,
            bytes_out,
            fwd.started_at,
            Some(backend_time),
        )
    };
    match result {
        Ok(relayed) => {
            if relayed.status == 401 {
                // The back end refused the gateway's token: renew it once.
                if let Ok(Some(credentials)) = http_backend(fwd).map(|b| b.credentials.as_ref()) {
                    credentials.unauthorized();
                }
            }
            let decision = if fwd.meta.quota_breached {
                Decision::QuotaBreachedAllowed
            } else if fwd.meta.validation_failed {
                Decision::ValidationFailedAllowed
            } else {
                Decision::BackendResponded
            };
            let outcome = record(relayed.status, decision, relayed.bytes_out);
            Settled::Done(Next::after(true, relayed.keep_alive), outcome)
        }
        Err(e) if e.response_started => {
            debug!(peer = %conn.peer.addr, reason = e.reason, "exchange aborted mid-response");
            let decision = match e.side {
                Side::Upstream => Decision::BackendAborted,
                Side::Client => Decision::ClientAborted,
            };
            Settled::Done(Next::Close, record(e.status, decision, 0))
        }
        Err(e) => {
            debug!(peer = %conn.peer.addr, status = e.status, reason = e.reason, "exchange failed");
            let request = fwd.request;
            let keep_alive = request.client_keep_alive && !e.request_unfinished;
            let persistence = Persistence::for_client(request.client_version, keep_alive);
            out.clear();
            let mut fields = Vec::new();
            request.request_id.write_field(&mut fields);
            fields.extend_from_slice(&fwd.extras.cors_fields);
            let security = &fwd.snapshot.listeners[conn.listener].security;
            fields.extend_from_slice(&security.fields);
            if e.retry_after > 0 {
                fields.extend_from_slice(b"Retry-After: ");
                fields.extend_from_slice(itoa::Buffer::new().format(e.retry_after).as_bytes());
                fields.extend_from_slice(b"\r\n");
            }
            write_error(out, e.status, &fields, persistence, request.head_request);
            Settled::Answer {
                keep_alive,
                status: e.status,
                bytes_out: out.len() as u64,
            }
        }
    }
}
