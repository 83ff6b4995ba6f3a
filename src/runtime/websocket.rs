//! An accepted WebSocket on a client connection: after its `101` reached the
//! client ([`crate::proxy::forward`]), the two connections are relayed both
//! ways ([`crate::io::tunnel`]) with the snapshot's `websocket_idle` limit,
//! counted as an open WebSocket, and ended `websocket_grace` after the
//! worker's drain begins (SIGTERM, takeover) with a Close handshake, status
//! 1001 to both sides ([`crate::io::tunnel_close`]). A reload never ends one: the
//! relay keeps the snapshot it started with and needs nothing else from it.
//! The request's record gets the relay's bytes and duration; the client
//! connection then closes.

use crate::io::buffered::BufferedStream;
use crate::io::tunnel::{relay, TunnelEnd, TunnelLimits};
use crate::io::tunnel_close::CloseLeg;
use crate::runtime::relay::Forwarded;
use crate::runtime::scope::Conn;
use crate::telemetry::record::Outcome;
use std::time::Duration;
use tracing::debug;

/// How long each connection gets to take its FIN after the relay ends, and
/// how long the Close handshake at the grace's end may take.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Relays an accepted WebSocket until it ends, then closes both connections
/// and completes `outcome` (bytes both ways, duration since the request began).
pub async fn run(
    conn: &Conn<'_>,
    client: &mut BufferedStream,
    mut upstream: BufferedStream,
    fwd: &Forwarded<'_>,
    outcome: &mut Outcome,
) {
    let ctx = conn.ctx;
    let timeouts = fwd.snapshot.timeouts;
    let limits = TunnelLimits {
        idle: timeouts.websocket_idle,
        grace: timeouts.websocket_grace,
        send: timeouts.send,
        close_wait: CLOSE_WAIT,
    };
    ctx.telemetry.websocket_opened();
    let scratch = ctx.take_buffer();
    let (moved, scratch) = relay(
        client,
        &mut upstream,
        conn.timer,
        limits,
        ctx.shutdown.wait(),
        scratch,
    )
    .await;
    ctx.give_buffer(scratch);
    ctx.telemetry.websocket_closed(end_index(moved.end));
    debug!(peer = %conn.peer.addr, end = ?moved.end, "WebSocket ended");
    let deadline = conn.timer.deadlines().after(CLOSE_WAIT);
    let _ = conn
        .timer
        .within(deadline, upstream.stream.shutdown())
        .await;
    let _ = conn.timer.within(deadline, client.stream.shutdown()).await;
    outcome.bytes_in += moved.bytes_in;
    outcome.bytes_out += moved.bytes_out;
    outcome.total = fwd.started_at.elapsed();
}

/// The relay's end as an index into
/// [`crate::telemetry::counters::WEBSOCKET_ENDS`].
fn end_index(end: TunnelEnd) -> usize {
    match end {
        TunnelEnd::ClientClosed => 0,
        TunnelEnd::UpstreamClosed => 1,
        TunnelEnd::Idle => 2,
        TunnelEnd::Grace(close)
            if close.client != CloseLeg::NotSent && close.upstream != CloseLeg::NotSent =>
        {
            3
        }
        TunnelEnd::Grace(_) => 4,
    }
}
