//! What one request on a connection works with: the connection's fixed
//! surroundings ([`Conn`]: worker, timer, peer, listener), the request's
//! buffers from the worker's free list ([`Buffers`]), how the gateway's own
//! answers are written, and the outcome that is recorded.

use crate::io::buffered::BufferedStream;
use crate::net::peer::Peer;
use crate::runtime::plan::RequestMeta;
use crate::runtime::worker_ctx::WorkerCtx;
use crate::telemetry::record::{Decision, Outcome};
use crate::time::deadline::TaskTimer;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// After an error answer on a connection the client may still be sending on,
/// how long (and how many bytes) to read and discard before closing.
pub const LINGER: Duration = Duration::from_secs(2);
pub const LINGER_BYTES: usize = 256 * 1024;

/// Whether the connection carries another request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
    /// Idle between requests while draining: close gracefully.
    IdleWhileDraining,
}

impl Next {
    pub fn after(written: bool, keep_alive: bool) -> Next {
        if written && keep_alive {
            Next::KeepAlive
        } else {
            Next::Close
        }
    }
}

/// A request's output and access-log buffers: taken from the worker's free
/// list with the request's first byte (idle connections hold none) and given
/// back when the request ends, on every path.
pub struct Buffers<'w> {
    ctx: &'w WorkerCtx,
    pub out: Vec<u8>,
    pub log: Vec<u8>,
}

impl<'w> Buffers<'w> {
    pub fn none(ctx: &'w WorkerCtx) -> Self {
        Buffers {
            ctx,
            out: Vec::new(),
            log: Vec::new(),
        }
    }

    pub fn take(&mut self, logging: bool) {
        if self.out.capacity() == 0 {
            self.out = self.ctx.take_buffer();
            if logging {
                self.log = self.ctx.take_buffer();
            }
        }
    }
}

impl Drop for Buffers<'_> {
    fn drop(&mut self) {
        self.ctx.give_buffer(std::mem::take(&mut self.out));
        self.ctx.give_buffer(std::mem::take(&mut self.log));
    }
}

/// One connection's fixed surroundings, for every request on it.
pub struct Conn<'a> {
    pub ctx: &'a Rc<WorkerCtx>,
    pub timer: &'a TaskTimer,
    pub peer: &'a Peer,
    pub listener: usize,
}

impl Conn<'_> {
    /// Writes a complete answer within the send timeout; then, when
    /// `linger`, reads and discards what the client still sends before the
    /// close. False when the write failed.
    pub async fn write_answer(
        &self,
        client: &mut BufferedStream,
        out: Vec<u8>,
        send: Duration,
        linger: bool,
    ) -> (bool, Vec<u8>) {
        let clock = self.timer.deadlines();
        let (result, out) = client.write_all(out, self.timer, clock.after(send)).await;
        if result.is_ok() && linger {
            client
                .linger_close(self.timer, clock.after(LINGER), LINGER_BYTES)
                .await;
        }
        (result.is_ok(), out)
    }
}

/// The record of a finished request.
pub fn outcome(
    status: u16,
    decision: Decision,
    meta: &RequestMeta,
    bytes_out: u64,
    started_at: Instant,
    backend: Option<Duration>,
) -> Outcome {
    Outcome {
        status,
        decision,
        bytes_in: meta.head_len as u64 + meta.body_len,
        bytes_out,
        total: started_at.elapsed(),
        backend,
    }
}
