//! Step 1 of a request's way: accepting connections on one listening socket,
//! in a way that can stop at any moment without losing a connection.
//!
//! The worker waits until the socket is readable (a poll operation on the
//! io_uring driver, epoll on the fallback driver), then accepts with plain
//! non-blocking `accept4` until the queue is empty (at most [`BURST`] at a
//! time, so one busy listener cannot starve the worker's other tasks).
//!
//! A ring `accept` operation is not used on purpose: cancelling one that the
//! kernel has just completed loses the accepted connection (the runtime drops
//! the completion, the descriptor stays open unserved, and the client is reset
//! when the process exits), which a takeover must never do. A cancelled poll
//! takes nothing: whatever is queued stays on the socket, which a successor
//! shares and accepts from.

use crate::io::socket_handle::SocketHandle;
use crate::runtime::admission::{admit, Admission};
use crate::runtime::open;
use crate::runtime::worker_ctx::WorkerCtx;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;
use tracing::warn;

/// Most connections accepted per readiness wake-up.
pub const BURST: usize = 64;

/// Pause after an accept error (e.g. out of descriptors) before trying again.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Accepts on `listener` (the listener at `index` in the snapshot) until the
/// worker's shutdown; `nonblocking_streams` is set on the epoll driver, whose
/// sockets must not block.
pub async fn accept_loop(
    ctx: Rc<WorkerCtx>,
    listener: std::net::TcpListener,
    index: usize,
    nonblocking_streams: bool,
) {
    let readiness = match listener
        .try_clone()
        .and_then(monoio::net::TcpListener::from_std)
    {
        Ok(readiness) => readiness,
        Err(e) => {
            warn!(worker = ctx.id, error = %e, "cannot use listener socket");
            return;
        }
    };
    loop {
        for _ in 0..BURST {
            if ctx.draining() {
                return;
            }
            match listener.accept() {
                Ok((stream, peer)) => serve(&ctx, stream, peer, index, nonblocking_streams),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!(worker = ctx.id, error = %e, "accept failed");
                    monoio::time::sleep(ERROR_PAUSE).await;
                    break;
                }
            }
        }
        monoio::select! {
            _ = ctx.shutdown.wait() => return,
            ready = readiness.readable(false) => {
                if let Err(e) = ready {
                    warn!(worker = ctx.id, error = %e, "waiting for connections failed");
                    monoio::time::sleep(ERROR_PAUSE).await;
                }
            }
        }
    }
}

/// Admission, then a connection task.
fn serve(
    ctx: &Rc<WorkerCtx>,
    stream: std::net::TcpStream,
    peer: std::net::SocketAddr,
    index: usize,
    nonblocking: bool,
) {
    let snapshot = ctx.snapshot();
    let Some(spec) = snapshot.listeners.get(index) else {
        return;
    };
    match admit(spec, &ctx.address_counts, peer.ip()) {
        Admission::Admitted(slot) => {
            if nonblocking {
                if let Err(e) = stream.set_nonblocking(true) {
                    warn!(worker = ctx.id, error = %e, "cannot set up a connection");
                    return;
                }
            }
            // On the epoll driver, plain connections read and write at once
            // where they can (io/socket_handle.rs); without the duplicate
            // (past half the descriptor limit) they use the runtime's
            // operations only.
            let handle = match spec.tls {
                None if nonblocking => SocketHandle::duplicate_if_plenty(&stream),
                _ => None,
            };
            match monoio::net::TcpStream::from_std(stream) {
                Ok(stream) => {
                    open::start(ctx, stream, handle, peer, index, slot);
                }
                Err(e) => warn!(worker = ctx.id, error = %e, "cannot set up a connection"),
            }
        }
        Admission::DeniedByRule => ctx.telemetry.connection_refused(false),
        Admission::OverCap => ctx.telemetry.connection_refused(true),
    }
}
