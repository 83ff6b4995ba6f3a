//! What one request on a connection works with: the connection's fixed
//! surroundings ([`Conn`]: worker, timer, peer, listener), the request's
//! buffers from the worker's free list ([`Buffers`]), how the gateway's own
//! answers are written, and the outcome that is recorded.

use crate::io::buffered::BufferedStream;
use crate::io::transport::Transport;
use crate::net::peer::Peer;
use crate::runtime::admission::AddressSlot;
use crate::runtime::plan::RequestMeta;
use crate::runtime::worker_ctx::{InFlight, WorkerCtx};
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

/// An open client connection: everything it holds between requests (the
/// read buffer only while a request is under way). In flight (a drain waits
/// for it) until dropped, and counted closed then.
pub struct Connection {
    pub ctx: Rc<WorkerCtx>,
    pub client: BufferedStream,
    pub timer: TaskTimer,
    pub peer: Peer,
    pub listener: usize,
    _open: InFlight,
    _address_slot: AddressSlot,
}

impl Connection {
    /// `client`'s transport is set up (TLS handshake done); no read buffer yet.
    pub fn new(
        ctx: Rc<WorkerCtx>,
        transport: Transport,
        timer: TaskTimer,
        peer: Peer,
        listener: usize,
        address_slot: AddressSlot,
    ) -> Self {
        Connection {
            _open: ctx.begin_request(),
            client: BufferedStream::new(transport, 0),
            ctx,
            timer,
            peer,
            listener,
            _address_slot: address_slot,
        }
    }

    /// Between requests: the read buffer goes back to the worker's free list
    /// and the transport frees its own, so that an idle connection holds none.
    pub fn go_idle(&mut self) {
        self.ctx.reclaim_read_buffer(&mut self.client);
        self.client.stream.release_idle_buffers();
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.go_idle();
        self.ctx.telemetry.connection_closed();
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
