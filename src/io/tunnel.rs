//! A two-way byte relay between two streams (an upgraded connection: a
//! WebSocket after its `101`), copying bytes as they come (only the frame
//! headers are followed, see below): bytes already buffered on either side
//! go first, then whatever either side sends is written to the other, until
//! either side closes, nothing moves either way for the idle limit, or a
//! stop signal's grace has run out (then a Close handshake ends it).
//!
//! One task, one loop, both streams owned by their connections (no split):
//! it waits for the first of the two streams to become readable, then reads
//! that one and writes what came to the other. The wait is a readiness poll
//! that hands the kernel no buffer (an io_uring `PollAdd`, or the epoll
//! driver's readiness): when the other stream wins, or the deadline passes,
//! the dropped poll is cancelled and no byte can be lost, unlike a cancelled
//! `read` whose buffer the kernel may already have filled. Reads and writes
//! themselves are never raced against anything but their deadline. A TLS
//! stream whose library holds a partial record counts as readable; its read
//! then waits for the rest of the record, which a peer sends at once.
//!
//! The bytes are a WebSocket's frames: a [`FrameTracker`] per direction
//! follows their headers (no payload copy), so that when the grace runs out
//! [`crate::io::tunnel_close`] can end it cleanly with Close frames of its
//! own, each written only between two frames.

use crate::io::buffered::{BufferedStream, IoFailure, BODY_READ_CAPACITY};
use crate::io::transport::Transport;
use crate::io::tunnel_close::{close_at_grace, GraceClose};
use crate::io::websocket_frames::FrameTracker;
use crate::time::deadline::{TaskTimer, Tick};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

/// How long the relay may run without traffic, and how long it may go on
/// after the stop signal.
#[derive(Debug, Clone, Copy)]
pub struct TunnelLimits {
    /// No byte either way for this long ends the relay.
    pub idle: Duration,
    /// After the stop signal (shutdown, takeover), the relay ends this much later.
    pub grace: Duration,
    /// Longest wait for one side to accept bytes.
    pub send: Duration,
    /// At the grace's end: how long the Close handshake may take (finishing
    /// a frame in flight, writing the Close frames, waiting for the peers'
    /// answers).
    pub close_wait: Duration,
}

/// Why a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelEnd {
    /// The client side closed (or failed).
    ClientClosed,
    /// The upstream side closed (or failed).
    UpstreamClosed,
    /// No byte either way for the idle limit.
    Idle,
    /// The grace after the stop signal ran out; how the Close handshake went.
    Grace(GraceClose),
}

/// What a relay moved, and why it ended.
#[derive(Debug, Clone, Copy)]
pub struct Tunneled {
    /// Bytes from the client to the upstream side.
    pub bytes_in: u64,
    /// Bytes from the upstream side to the client.
    pub bytes_out: u64,
    pub end: TunnelEnd,
}

/// Which side woke the relay.
pub(super) enum Woke {
    Client,
    Upstream,
    Stop,
}

/// Relays bytes both ways between `client` and `upstream` until one closes,
/// the idle limit passes, or `limits.grace` after `stop` resolves.
/// `scratch` is a buffer to copy through (returned for reuse).
pub async fn relay<S: Future<Output = ()>>(
    client: &mut BufferedStream,
    upstream: &mut BufferedStream,
    timer: &TaskTimer,
    limits: TunnelLimits,
    stop: S,
    mut scratch: Vec<u8>,
) -> (Tunneled, Vec<u8>) {
    let mut stop = pin!(stop);
    let mut moved = Tunneled {
        bytes_in: 0,
        bytes_out: 0,
        end: TunnelEnd::ClientClosed,
    };
    let clock = timer.deadlines();
    let mut idle_end = clock.after(limits.idle);
    let mut grace_end: Option<Tick> = None;
    // What each side sent: [client, upstream].
    let mut frames = [FrameTracker::new(); 2];
    // Bytes that arrived with the heads go first.
    for to_upstream in [true, false] {
        let (from, to) = if to_upstream {
            (&mut *client, &mut *upstream)
        } else {
            (&mut *upstream, &mut *client)
        };
        if from.pending().is_empty() {
            continue;
        }
        let deadline = clock.after(limits.send);
        let sent = &mut frames[usize::from(!to_upstream)];
        match pass(from, to, sent, &mut scratch, timer, deadline, deadline).await {
            Ok(n) if to_upstream => moved.bytes_in += n,
            Ok(n) => moved.bytes_out += n,
            Err(end) => {
                moved.end = end.blame(to_upstream);
                return (moved, scratch);
            }
        }
    }
    loop {
        let wake = grace_end.map_or(idle_end, |g| g.min(idle_end));
        let stop = if grace_end.is_none() {
            Some(stop.as_mut())
        } else {
            None
        };
        let woke = timer
            .within(
                wake,
                first_ready(Some(&mut client.stream), Some(&mut upstream.stream), stop),
            )
            .await;
        let to_upstream = match woke {
            Err(_) if grace_end.is_some_and(|g| clock.now() >= g) => break,
            Err(_) => {
                moved.end = TunnelEnd::Idle;
                return (moved, scratch);
            }
            Ok(Ok(Woke::Stop)) => {
                grace_end = Some(clock.after(limits.grace));
                continue;
            }
            Ok(Ok(Woke::Client)) => true,
            Ok(Ok(Woke::Upstream)) => false,
            Ok(Err(_)) => {
                // A failed poll: the side it was on is gone.
                moved.end = TunnelEnd::ClientClosed;
                return (moved, scratch);
            }
        };
        let (from, to) = if to_upstream {
            (&mut *client, &mut *upstream)
        } else {
            (&mut *upstream, &mut *client)
        };
        let read_by = grace_end.map_or(idle_end, |g| g.min(idle_end));
        let write_by = clock.after(limits.send);
        let sent = &mut frames[usize::from(!to_upstream)];
        match pass(from, to, sent, &mut scratch, timer, read_by, write_by).await {
            Ok(n) if to_upstream => moved.bytes_in += n,
            Ok(n) => moved.bytes_out += n,
            Err(PassEnd::ReadTimedOut) if grace_end.is_some_and(|g| clock.now() >= g) => break,
            Err(end) => {
                moved.end = end.blame(to_upstream);
                return (moved, scratch);
            }
        }
        idle_end = clock.after(limits.idle);
    }
    let close = close_at_grace(
        client,
        upstream,
        &mut frames,
        timer,
        limits.close_wait,
        &mut scratch,
        &mut moved,
    )
    .await;
    moved.end = TunnelEnd::Grace(close);
    (moved, scratch)
}

/// Which stream a failed pass ended on.
enum PassEnd {
    Read,
    Write,
    /// The read waited past its deadline (idle or grace).
    ReadTimedOut,
}

impl PassEnd {
    /// The relay's end, for a pass in the direction `to_upstream`.
    fn blame(self, to_upstream: bool) -> TunnelEnd {
        match (self, to_upstream) {
            (PassEnd::ReadTimedOut, _) => TunnelEnd::Idle,
            (PassEnd::Read, true) | (PassEnd::Write, false) => TunnelEnd::ClientClosed,
            (PassEnd::Read, false) | (PassEnd::Write, true) => TunnelEnd::UpstreamClosed,
        }
    }
}

/// Moves what `from` holds (reading once if it holds nothing) to `to`,
/// following its frames in `sent`.
async fn pass(
    from: &mut BufferedStream,
    to: &mut BufferedStream,
    sent: &mut FrameTracker,
    scratch: &mut Vec<u8>,
    timer: &TaskTimer,
    read_by: Tick,
    write_by: Tick,
) -> Result<u64, PassEnd> {
    if from.pending().is_empty() {
        match from.read_more(BODY_READ_CAPACITY, timer, read_by).await {
            Ok(_) => {}
            Err(IoFailure::TimedOut) => return Err(PassEnd::ReadTimedOut),
            Err(_) => return Err(PassEnd::Read),
        }
    }
    let mut out = std::mem::take(scratch);
    out.clear();
    out.extend_from_slice(from.pending());
    sent.feed(&out);
    let n = out.len();
    from.consume(n);
    let (result, out) = to.write_all(out, timer, write_by).await;
    *scratch = out;
    result.map(|()| n as u64).map_err(|_| PassEnd::Write)
}

/// Waits for the first of: `client` readable, `upstream` readable, `stop`
/// (a side or `stop` that is `None` is not waited for).
/// Readiness only: dropping this future loses no byte.
pub(super) async fn first_ready<S: Future<Output = ()>>(
    client: Option<&mut Transport>,
    upstream: Option<&mut Transport>,
    mut stop: Option<Pin<&mut S>>,
) -> io::Result<Woke> {
    let mut client = pin!(readable_or_never(client));
    let mut upstream = pin!(readable_or_never(upstream));
    poll_fn(|cx| {
        if let Some(stop) = stop.as_mut() {
            if stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(Woke::Stop));
            }
        }
        if let Poll::Ready(r) = client.as_mut().poll(cx) {
            return Poll::Ready(r.map(|()| Woke::Client));
        }
        if let Poll::Ready(r) = upstream.as_mut().poll(cx) {
            return Poll::Ready(r.map(|()| Woke::Upstream));
        }
        Poll::Pending
    })
    .await
}

/// Resolves when `stream` is readable; never without one.
async fn readable_or_never(stream: Option<&mut Transport>) -> io::Result<()> {
    match stream {
        Some(stream) => stream.readable().await,
        None => std::future::pending().await,
    }
}
