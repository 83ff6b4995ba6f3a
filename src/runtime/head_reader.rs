//! Reading a request's head on a client connection: where the reading
//! stands ([`HeadReader`]: the snapshot and the head deadline), planning the
//! pending bytes once a head may be complete, and the answer to a head that
//! could not be read ([`refuse_unread`]). Used by [`crate::runtime::conn`].

use crate::http::request::RequestError;
use crate::http::respond::{write_error, Persistence};
use crate::http::BodyFraming;
use crate::io::buffered::{BufferedStream, IoFailure};
use crate::runtime::dispatch::{plan_request, Context, Planned};
use crate::runtime::scope::{Buffers, Conn, Next, LINGER, LINGER_BYTES};
use crate::snapshot::Snapshot;
use crate::telemetry::record::Decision;
use crate::time::deadline::Tick;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// Where reading a request head stands: the snapshot current when the
/// connection became readable (after any idle wait, so a token revoked while
/// the connection idled is refused), and the deadline of the head.
pub struct HeadReader {
    /// `Rc<Arc<_>>` like [`WorkerCtx::snapshot`]'s: a plain increment per request.
    #[allow(clippy::redundant_allocation)]
    pub snapshot: Rc<Arc<Snapshot>>,
    pub started: bool,
    pub deadline: Tick,
    logging: bool,
}

/// A request whose head could not be read: answer `status`, close, and
/// record it as unparsed.
pub struct Unread {
    pub status: u16,
    pub decision: Decision,
    pub bytes_in: u64,
}

impl HeadReader {
    pub fn new(conn: &Conn<'_>, client: &BufferedStream) -> Self {
        let snapshot = conn.ctx.snapshot();
        HeadReader {
            deadline: conn.timer.deadlines().after(snapshot.timeouts.head),
            started: !client.pending().is_empty(),
            snapshot,
            logging: conn.ctx.access_logging(),
        }
    }

    /// Plans the pending bytes of a started request: `Ok(None)` while its
    /// head is not complete.
    pub fn plan(
        &self,
        conn: &Conn<'_>,
        client: &BufferedStream,
        buffers: &mut Buffers<'_>,
    ) -> Result<Option<Planned>, RequestError> {
        let ctx = conn.ctx;
        let cx = Context {
            snapshot: &self.snapshot,
            peer: conn.peer,
            listener: conn.listener,
            draining: ctx.draining(),
            ids: &ctx.ids,
            limits: &ctx.limits,
            tally: &ctx.subscriber_requests,
        };
        buffers.take(self.logging);
        buffers.log.clear();
        let log = self.logging.then_some(&mut buffers.log);
        plan_request(&cx, client.pending(), &mut buffers.out, log)
    }

    /// Takes a read's result: `None` to go on; a timeout once a request
    /// started is a 408; anything else ends the connection.
    pub fn after_read(&mut self, read: Result<usize, IoFailure>) -> Option<Result<Next, Unread>> {
        match read {
            Ok(_) => {
                self.started = true;
                None
            }
            Err(IoFailure::TimedOut) if self.started => Some(Err(Unread {
                status: 408,
                decision: Decision::ClientTimeout,
                bytes_in: 0,
            })),
            Err(_) => Some(Ok(Next::Close)),
        }
    }
}

/// Answers a request whose head could not be read (`status`, then close) and
/// records it. After a malformed head the client may still be sending: what
/// it sends is read and discarded before the close; a client too slow to send
/// its head gets its 408 without that wait.
pub async fn refuse_unread(
    conn: &Conn<'_>,
    client: &mut BufferedStream,
    buffers: &mut Buffers<'_>,
    snapshot: &Snapshot,
    unread: Unread,
) {
    let Unread {
        status,
        decision,
        bytes_in,
    } = unread;
    let mut out = std::mem::take(&mut buffers.out);
    out.clear();
    write_error(&mut out, status, b"", Persistence::Close, false);
    let started_at = Instant::now();
    let linger = status != 408;
    let clock = conn.timer.deadlines();
    let (_, out) = client
        .write_all(out, conn.timer, clock.after(snapshot.timeouts.send))
        .await;
    if linger {
        client
            .linger_close(conn.timer, clock.after(LINGER), LINGER_BYTES)
            .await;
    }
    buffers.out = out;
    conn.ctx
        .finish_unparsed(conn.peer, status, decision, bytes_in, started_at);
}

/// Discards a request body that is already fully read; false when the
/// connection must close instead (body not all here yet, or chunked).
pub fn skip_small_body(client: &mut BufferedStream, body: BodyFraming) -> bool {
    match body {
        BodyFraming::None => true,
        BodyFraming::Length(n) if n <= client.pending().len() as u64 => {
            client.consume(n as usize);
            true
        }
        _ => false,
    }
}
