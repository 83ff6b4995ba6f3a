//! Opening an admitted connection (end of step 1): the socket's options, the
//! TLS handshake on TLS listeners, then a task of its own for the keep-alive
//! loop ([`crate::runtime::conn::serve`]).
//!
//! The handshake runs in a task that ends with it, so that what it needed
//! (the handshake's state, the accepted socket and address) is freed before
//! the connection settles into waiting for requests: an idle connection's
//! task holds only its [`Connection`].

use crate::io::socket_handle::SocketHandle;
use crate::io::transport::Transport;
use crate::net::peer::Peer;
use crate::runtime::admission::AddressSlot;
use crate::runtime::conn;
use crate::runtime::scope::Connection;
use crate::runtime::worker_ctx::WorkerCtx;
use crate::time::deadline::TaskTimer;
use crate::tls::server::ServerTls;
use monoio::net::TcpStream;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use tracing::debug;

/// Starts serving an accepted connection on the listener at `listener`
/// (counted open from here; [`Connection`] counts it closed when dropped).
pub fn start(
    ctx: &Rc<WorkerCtx>,
    stream: TcpStream,
    handle: Option<SocketHandle>,
    addr: SocketAddr,
    listener: usize,
    address_slot: AddressSlot,
) {
    let _ = stream.set_nodelay(true);
    ctx.telemetry.connection_opened();
    let tls = ctx
        .snapshot()
        .listeners
        .get(listener)
        .and_then(|l| l.tls.clone());
    let timer = ctx.deadlines.timer();
    match tls {
        None => {
            let transport = Transport::Plain(stream);
            let peer = Peer::new(addr);
            let mut conn = Connection::new(
                Rc::clone(ctx),
                transport,
                timer,
                peer,
                listener,
                address_slot,
            );
            conn.client.handle = handle;
            monoio::spawn(conn::serve(conn));
        }
        Some(tls) => {
            let opening = Opening {
                ctx: Rc::clone(ctx),
                stream,
                addr,
                listener,
                address_slot,
            };
            monoio::spawn(handshake(opening, tls, timer));
        }
    }
}

/// An accepted connection on a TLS listener, before its handshake.
struct Opening {
    ctx: Rc<WorkerCtx>,
    stream: TcpStream,
    addr: SocketAddr,
    listener: usize,
    address_slot: AddressSlot,
}

/// Runs the TLS handshake (counted in flight, so that a drain waits for it),
/// then hands the connection to a task of its own.
async fn handshake(opening: Opening, tls: Arc<ServerTls>, timer: TaskTimer) {
    let Opening {
        ctx,
        stream,
        addr,
        listener,
        address_slot,
    } = opening;
    let in_flight = ctx.begin_request();
    let accepted = crate::tls::accept(&tls, stream, &timer).await;
    drop(in_flight);
    match accepted {
        Ok((transport, info)) => {
            ctx.telemetry.tls_handshake(true);
            let peer = Peer::new(addr).with_tls(info);
            let conn = Connection::new(
                Rc::clone(&ctx),
                transport,
                timer,
                peer,
                listener,
                address_slot,
            );
            monoio::spawn(conn::serve(conn));
        }
        Err(reason) => {
            ctx.telemetry.tls_handshake(false);
            // Logged under the connection's target, as before the handshake
            // had a task of its own (operators filter on it).
            debug!(target: "portcullis::runtime::conn", peer = %addr, %reason, "TLS handshake failed");
            ctx.telemetry.connection_closed();
        }
    }
}
