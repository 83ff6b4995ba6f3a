//! The gateway's side of an accepted WebSocket opening handshake: the
//! `101` head goes to the client, and the back-end connection is parked in
//! the exchange for the connection task's two-way relay
//! ([`crate::io::tunnel`], run by [`crate::runtime::websocket`]).

use super::exchange::{Exchange, Failure, Relayed};
use super::ForwardError;
use crate::io::buffered::BufferedStream;

/// Sends an accepted WebSocket's `101` head (in `out`) to the client and
/// parks the back-end connection in the exchange for the caller's relay; it
/// never goes back to the pool.
pub(super) async fn switch_protocols(
    ex: &Exchange<'_>,
    client: &mut BufferedStream,
    upstream: BufferedStream,
    out: Vec<u8>,
) -> (Result<Relayed, Failure>, Vec<u8>) {
    let len = out.len() as u64;
    let (result, out) = client
        .write_all(out, ex.timer, ex.deadline(ex.timeouts.send))
        .await;
    if result.is_err() {
        let gone = ForwardError::aborted(
            super::Side::Client,
            "client went away before the protocol switch",
        );
        return (Err(Failure::Client(gone)), out);
    }
    ex.written.set(ex.written.get() + len);
    ex.upgraded.set(Some(upstream));
    let relayed = Relayed {
        keep_alive: false,
        status: 101,
        bytes_out: ex.written.get(),
    };
    (Ok(relayed), out)
}
