//! The clean end of a relayed WebSocket whose shutdown grace ran out
//! (RFC 6455 §5.5.1, §7.1.2): the gateway sends each side a Close frame with
//! status 1001 (Going Away), unmasked to the client, masked to the back end
//! (§5.3), then waits a bounded time for each side's Close answer (or end of
//! stream) before the caller closes the sockets.
//!
//! A Close frame is only ever written between two frames. A side whose peer
//! is in the middle of sending a frame to it at that moment first gets the
//! rest of that frame (relayed as before, within the same wait), then the
//! Close; if the frame does not end in time, that side gets no Close frame,
//! only the end of the connection. A side that already received a Close
//! from its peer gets none from the gateway (a second Close is not allowed).
//! What a side sends after the gateway's Close is read and dropped: the other
//! side has had its Close and takes no more data.

use crate::io::buffered::{BufferedStream, IoFailure, BODY_READ_CAPACITY};
use crate::io::tunnel::{first_ready, Tunneled, Woke};
use crate::io::websocket_frames::{
    close_to_client, close_to_server, masking_key, FrameTracker, GOING_AWAY,
};
use crate::time::deadline::{TaskTimer, Tick};
use std::future::Pending;
use std::pin::Pin;
use std::time::Duration;

/// How the Close handshake went with each side, at the grace's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraceClose {
    pub client: CloseLeg,
    pub upstream: CloseLeg,
}

/// The Close handshake with one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseLeg {
    /// The gateway sent Close 1001 and the side answered with its own Close
    /// (or closed its end).
    Answered,
    /// The gateway sent Close 1001; no answer came in time.
    Unanswered,
    /// No Close from the gateway: a frame to this side did not end in time,
    /// the side had already received a Close, or it was gone.
    NotSent,
}

/// Where the handshake stands with one side.
#[derive(Debug, Clone, Copy, Default)]
struct Leg {
    /// Owed a Close, once the frame its peer is sending it has ended.
    owed: bool,
    sent: bool,
    /// Nothing more to read from it: it sent its Close, closed, or failed.
    done: bool,
}

/// Runs the Close handshake on both sides within `wait`. `frames` holds
/// what each side sent so far (`[client, upstream]`); bytes relayed to
/// finish a frame count in `moved`.
pub(super) async fn close_at_grace(
    client: &mut BufferedStream,
    upstream: &mut BufferedStream,
    frames: &mut [FrameTracker; 2],
    timer: &TaskTimer,
    wait: Duration,
    scratch: &mut Vec<u8>,
    moved: &mut Tunneled,
) -> GraceClose {
    let deadline = timer.deadlines().after(wait);
    let mut legs = [Leg::default(); 2];
    for side in 0..2 {
        let peer = 1 - side;
        legs[side].owed = !frames[peer].close_seen();
        legs[side].done = frames[side].close_seen();
    }
    for side in 0..2 {
        if legs[side].owed && frames[1 - side].at_boundary() {
            let to = pick(client, upstream, side).0;
            send_close(to, side, &mut legs[side], timer, deadline).await;
        }
    }
    while let Some(side) = next_to_read(&legs) {
        let (from_client, from_upstream) = (side_to_read(&legs, 0), side_to_read(&legs, 1));
        let woke = timer
            .within(
                deadline,
                first_ready(
                    from_client.then_some(&mut client.stream),
                    from_upstream.then_some(&mut upstream.stream),
                    None::<Pin<&mut Pending<()>>>,
                ),
            )
            .await;
        let from_side = match woke {
            Ok(Ok(Woke::Client)) => 0,
            Ok(Ok(Woke::Upstream)) => 1,
            Ok(Ok(Woke::Stop)) | Ok(Err(_)) => side,
            Err(_) => break,
        };
        let (from, _) = pick(client, upstream, from_side);
        match from.read_more(BODY_READ_CAPACITY, timer, deadline).await {
            Ok(_) => {}
            Err(IoFailure::TimedOut) => break,
            Err(_) => {
                // Closed or failed: its frame in flight will not end.
                legs[from_side].done = true;
                legs[1 - from_side].owed = false;
                continue;
            }
        }
        let sent = &mut frames[from_side];
        take_pending(
            client, upstream, from_side, sent, &mut legs, timer, deadline, scratch, moved,
        )
        .await;
        if frames[from_side].close_seen() {
            legs[from_side].done = true;
        }
    }
    let leg = |l: Leg| match (l.sent, l.done) {
        (false, _) => CloseLeg::NotSent,
        (true, true) => CloseLeg::Answered,
        (true, false) => CloseLeg::Unanswered,
    };
    GraceClose {
        client: leg(legs[0]),
        upstream: leg(legs[1]),
    }
}

/// True while `side` must still be read: its peer waits for the end of its
/// frame, or the gateway waits for its Close answer.
fn side_to_read(legs: &[Leg; 2], side: usize) -> bool {
    !legs[side].done && (legs[side].sent || legs[1 - side].owed)
}

/// A side still to be read, if any.
fn next_to_read(legs: &[Leg; 2]) -> Option<usize> {
    (0..2).find(|&side| side_to_read(legs, side))
}

/// Handles what `from_side` sent: while its peer is owed a Close, relays it
/// up to the end of the frame in flight and then writes the Close; drops the
/// rest, following its frames to see its Close.
#[allow(clippy::too_many_arguments)]
async fn take_pending(
    client: &mut BufferedStream,
    upstream: &mut BufferedStream,
    from_side: usize,
    sent: &mut FrameTracker,
    legs: &mut [Leg; 2],
    timer: &TaskTimer,
    deadline: Tick,
    scratch: &mut Vec<u8>,
    moved: &mut Tunneled,
) {
    let peer = 1 - from_side;
    let (from, to) = pick(client, upstream, from_side);
    while legs[peer].owed && !from.pending().is_empty() {
        let n = sent.feed_to_boundary(from.pending());
        let mut out = std::mem::take(scratch);
        out.clear();
        out.extend_from_slice(&from.pending()[..n]);
        from.consume(n);
        let (result, out) = to.write_all(out, timer, deadline).await;
        *scratch = out;
        if result.is_err() {
            legs[peer].owed = false;
            legs[peer].done = true;
            break;
        }
        if from_side == 0 {
            moved.bytes_in += n as u64;
        } else {
            moved.bytes_out += n as u64;
        }
        if sent.close_seen() {
            // The peer got the side's own Close: it may get no second one.
            legs[peer].owed = false;
        } else if sent.at_boundary() {
            send_close(to, peer, &mut legs[peer], timer, deadline).await;
        }
    }
    sent.feed(from.pending());
    let n = from.pending().len();
    from.consume(n);
}

/// Writes a Close 1001 to `side` (0: the client, unmasked; 1: the back end,
/// masked).
async fn send_close(
    to: &mut BufferedStream,
    side: usize,
    leg: &mut Leg,
    timer: &TaskTimer,
    deadline: Tick,
) {
    leg.owed = false;
    let frame = if side == 0 {
        close_to_client(GOING_AWAY).to_vec()
    } else {
        close_to_server(GOING_AWAY, masking_key()).to_vec()
    };
    let (result, _) = to.write_all(frame, timer, deadline).await;
    match result {
        Ok(()) => leg.sent = true,
        Err(_) => leg.done = true,
    }
}

/// The stream of `side` (0: client, 1: upstream) and the other one.
fn pick<'a>(
    client: &'a mut BufferedStream,
    upstream: &'a mut BufferedStream,
    side: usize,
) -> (&'a mut BufferedStream, &'a mut BufferedStream) {
    if side == 0 {
        (client, upstream)
    } else {
        (upstream, client)
    }
}
