//! A planned forward: the exchange with the route's back end
//! ([`crate::proxy::forward`]) and, when it fails before any of the response
//! reached the client, the gateway's error answer; returns what the request's
//! record needs.

use super::scope::{outcome, Conn, Next};
use crate::http::respond::{write_error, Persistence};
use crate::io::buffered::BufferedStream;
use crate::policy::headers::edits::ResponseExtras;
use crate::proxy::exchange::{Exchange, ForwardRequest};
use crate::proxy::forward::forward;
use crate::proxy::{ForwardError, Side};
use crate::runtime::plan::RequestMeta;
use crate::snapshot::{BackendSpec, Snapshot};
use crate::telemetry::record::{Decision, Outcome};
use std::time::Instant;
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

/// Runs the exchange with the route's back end; a failure before any of
/// the response reached the client is answered here.
pub async fn exchange(
    conn: &Conn<'_>,
    client: &mut BufferedStream,
    fwd: &Forwarded<'_>,
    out: Vec<u8>,
) -> (Next, Outcome, Vec<u8>) {
    let snapshot = fwd.snapshot;
    let spec = &snapshot.routes[fwd.route];
    let security = &snapshot.listeners[conn.listener].security;
    let exchange = Exchange {
        pool: &conn.ctx.pool,
        pool_settings: snapshot.pool,
        timeouts: snapshot.timeouts,
        timer: conn.timer,
        written: std::cell::Cell::new(0),
        response_edits: crate::policy::headers::ResponseEdits {
            transform: spec.policies.response_headers.as_ref(),
            extras: fwd.extras,
            security,
        },
    };
    let backend_start = Instant::now();
    let (result, out) = match &spec.backend {
        BackendSpec::Http(backend) => forward(&exchange, client, backend, fwd.request, out).await,
        // A plan forwards only to HTTP back ends; answered as a failure all the same.
        BackendSpec::Stock(_) => (
            Err(ForwardError::upstream(502, "route has no HTTP back end")),
            out,
        ),
    };
    let backend_time = Some(backend_start.elapsed());
    let record = |status, decision, bytes_out| {
        outcome(
            status,
            decision,
            fwd.meta,
            bytes_out,
            fwd.started_at,
            backend_time,
        )
    };
    match result {
        Ok(relayed) => {
            let decision = if fwd.meta.quota_breached {
                Decision::QuotaBreachedAllowed
            } else {
                Decision::BackendResponded
            };
            let outcome = record(relayed.status, decision, relayed.bytes_out);
            (Next::after(true, relayed.keep_alive), outcome, out)
        }
        Err(e) if e.response_started => {
            debug!(peer = %conn.peer.addr, reason = e.reason, "exchange aborted mid-response");
            let decision = match e.side {
                Side::Upstream => Decision::BackendAborted,
                Side::Client => Decision::ClientAborted,
            };
            (Next::Close, record(e.status, decision, 0), out)
        }
        Err(e) => {
            debug!(peer = %conn.peer.addr, status = e.status, reason = e.reason, "exchange failed");
            let request = fwd.request;
            let keep_alive = request.client_keep_alive && !e.request_unfinished;
            let persistence = Persistence::for_client(request.client_version, keep_alive);
            let mut out = out;
            out.clear();
            let mut fields = Vec::new();
            request.request_id.write_field(&mut fields);
            fields.extend_from_slice(&fwd.extras.cors_fields);
            fields.extend_from_slice(&security.fields);
            write_error(
                &mut out,
                e.status,
                &fields,
                persistence,
                request.head_request,
            );
            let bytes_out = out.len() as u64;
            let send = snapshot.timeouts.send;
            let (written, out) = conn.write_answer(client, out, send, !keep_alive).await;
            let outcome = record(e.status, Decision::for_exchange_status(e.status), bytes_out);
            (Next::after(written, keep_alive), outcome, out)
        }
    }
}
