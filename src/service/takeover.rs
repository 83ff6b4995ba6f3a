//! Zero-downtime takeover: a new process asks the running one, over its
//! control socket, for every listening socket, starts its workers on them,
//! and only then lets the old process stop accepting and drain.
//!
//! No listening socket is ever closed: each worker's `SO_REUSEPORT` socket is
//! passed on as it is (same kernel socket, same accept queue), so a
//! connection waiting in any queue is accepted by one process or the other,
//! never reset. The conversation (`SOCK_SEQPACKET`, see [`super::handover`]):
//!
//! | step | from → to | message |
//! |---|---|---|
//! | 1 | new → old | `H` hello: protocol version and pid |
//! | 2 | old → new | `L` listeners (name, address, sockets), then `F` messages carrying the sockets |
//! | 3 | old → new | state at hand-over: `S` chunks, `E` ([`super::state`]) |
//! | 4 | new → old | `R`: every worker of the new process accepts; the control socket path is the new process's |
//! | 5 | old | stops accepting, drains in-flight and keep-alive connections (`timeouts.drain`) |
//! | 6 | old → new | state counted while draining: `S` chunks, `E`; then `D`, and the old process exits |
//!
//! If the new process fails before step 4, the old one keeps serving as if
//! nothing happened and waits for the next takeover.

use super::handover::{Channel, MAX_FDS, MAX_PAYLOAD};
use super::state::StateHandover;
use rustix::fd::{AsFd, OwnedFd};
use serde::{Deserialize, Serialize};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{info, warn};

/// Version of the conversation; both processes must speak the same one.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest wait for any step of the conversation before the drain.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

const HELLO: u8 = b'H';
const LISTENERS: u8 = b'L';
const FDS: u8 = b'F';
const STATE: u8 = b'S';
const STATE_END: u8 = b'E';
const READY: u8 = b'R';
const DONE: u8 = b'D';

/// Largest state blob accepted (a guard against a confused peer).
const MAX_STATE: usize = 1 << 30;

#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    version: u32,
    pid: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct ListenerHeader {
    name: String,
    address: SocketAddr,
    sockets: usize,
    #[serde(default)]
    admin: bool,
}

/// One listener's sockets, one per worker, as handed from process to process.
#[derive(Debug)]
pub struct HandedListener {
    pub name: String,
    /// The bound address (port 0 resolved).
    pub address: SocketAddr,
    pub sockets: Vec<OwnedFd>,
    /// The admin endpoint's socket (one, served by its own thread), not a
    /// client listener.
    pub admin: bool,
}

/// Why a takeover could not start.
#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    #[error("cannot reach the running gateway's control socket {path}: {source}")]
    Connect { path: String, source: io::Error },
    #[error("takeover conversation with the running gateway failed: {0}")]
    Conversation(#[from] io::Error),
    #[error("the running gateway speaks takeover protocol {theirs}, this binary {ours}")]
    Version { theirs: u32, ours: u32 },
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn send_blob(channel: &Channel, blob: &[u8]) -> io::Result<()> {
    for chunk in blob.chunks(MAX_PAYLOAD) {
        channel.send(STATE, chunk, &[])?;
    }
    channel.send(STATE_END, b"", &[])
}

fn recv_blob(channel: &Channel) -> io::Result<Vec<u8>> {
    let mut blob = Vec::new();
    loop {
        let message = channel.recv()?;
        match message.kind {
            STATE if blob.len() + message.payload.len() <= MAX_STATE => {
                blob.extend_from_slice(&message.payload)
            }
            STATE => return Err(invalid("state blob too large")),
            STATE_END => return Ok(blob),
            other => return Err(invalid(format!("unexpected `{}` message", other as char))),
        }
    }
}

// ---------------------------------------------------------------------------
// The new process
// ---------------------------------------------------------------------------

/// What the new process received from the old one, and the channel on which
/// it reports that it serves and later hears that the old one has drained.
#[derive(Debug)]
pub struct Inherited {
    channel: Channel,
    pub listeners: Vec<HandedListener>,
    /// Process id of the process taken over (from its sockets' owner).
    pub predecessor: Option<u32>,
}

/// Steps 1–3: asks the gateway listening on `control` for its sockets and
/// its state; imports the state into `state`.
pub fn request(control: &Path, state: &dyn StateHandover) -> Result<Inherited, TakeoverError> {
    let channel = Channel::connect(control).map_err(|source| TakeoverError::Connect {
        path: control.display().to_string(),
        source,
    })?;
    channel.set_timeout(Some(STEP_TIMEOUT))?;
    let hello = Hello {
        version: PROTOCOL_VERSION,
        pid: std::process::id(),
    };
    channel.send(HELLO, &serde_json::to_vec(&hello).map_err(invalid)?, &[])?;
    let header = channel.expect(LISTENERS)?;
    if let Ok(theirs) = serde_json::from_slice::<Hello>(&header.payload) {
        return Err(TakeoverError::Version {
            theirs: theirs.version,
            ours: PROTOCOL_VERSION,
        });
    }
    let headers: Vec<ListenerHeader> = serde_json::from_slice(&header.payload).map_err(invalid)?;
    let wanted: usize = headers.iter().map(|h| h.sockets).sum();
    let mut fds = Vec::with_capacity(wanted);
    while fds.len() < wanted {
        let message = channel.expect(FDS)?;
        if message.fds.is_empty() {
            return Err(invalid("a socket message carried no sockets").into());
        }
        fds.extend(message.fds);
    }
    if fds.len() != wanted {
        return Err(invalid(format!("expected {wanted} sockets, got {}", fds.len())).into());
    }
    let mut fds = fds.into_iter();
    let listeners = headers
        .into_iter()
        .map(|h| HandedListener {
            name: h.name,
            address: h.address,
            sockets: fds.by_ref().take(h.sockets).collect(),
            admin: h.admin,
        })
        .collect();
    let blob = recv_blob(&channel)?;
    if let Err(e) = state.import_at_handover(&blob) {
        warn!(error = %e, "takeover: state from the previous process could not be loaded");
    }
    let predecessor = rustix::net::sockopt::socket_peercred(channel.as_fd())
        .ok()
        .map(|cred| cred.pid.as_raw_nonzero().get() as u32);
    Ok(Inherited {
        channel,
        listeners,
        predecessor,
    })
}

impl Inherited {
    /// Takes the sockets handed over for the listener `name` configured at
    /// `configured`: same name, and the same address (port 0 matches the
    /// port it was bound to).
    pub fn take_listener(&mut self, name: &str, configured: SocketAddr) -> Option<HandedListener> {
        let position = self
            .listeners
            .iter()
            .position(|l| !l.admin && l.name == name && same_address(configured, l.address))?;
        Some(self.listeners.remove(position))
    }

    /// Takes the admin endpoint's socket if it is bound where `configured` says.
    pub fn take_admin(&mut self, configured: SocketAddr) -> Option<OwnedFd> {
        let position = self
            .listeners
            .iter()
            .position(|l| l.admin && same_address(configured, l.address))?;
        self.listeners.remove(position).sockets.into_iter().next()
    }

    /// Step 4: this process serves; the old one may stop accepting. Then, on
    /// a thread of its own, waits for step 6 (up to `drain` plus a margin) and
    /// adds the old process's drain-time counts to `state`.
    pub fn serving(self, state: Arc<dyn StateHandover>, drain: Duration) -> io::Result<()> {
        self.channel.send(READY, b"", &[])?;
        let predecessor = self.predecessor.unwrap_or(0);
        let channel = self.channel;
        channel.set_timeout(Some(drain + STEP_TIMEOUT))?;
        std::thread::Builder::new()
            .name("portcullis-takeover".into())
            .spawn(move || {
                let finished = recv_blob(&channel).and_then(|delta| {
                    channel.expect(DONE)?;
                    Ok(delta)
                });
                match finished {
                    Ok(delta) => {
                        if let Err(e) = state.import_after_drain(&delta) {
                            warn!(error = %e, "takeover: the previous process's drain-time state could not be added");
                        }
                        info!(target: "portcullis::audit", previous_pid = predecessor, "takeover complete: the previous process drained and exited");
                    }
                    Err(e) => warn!(previous_pid = predecessor, error = %e, "takeover: the previous process did not report the end of its drain; what it counted while draining is lost"),
                }
            })?;
        Ok(())
    }
}

/// A configured address matches a bound one when equal, or when it asks for
/// port 0 on the same IP.
fn same_address(configured: SocketAddr, bound: SocketAddr) -> bool {
    configured == bound || (configured.port() == 0 && configured.ip() == bound.ip())
}

// ---------------------------------------------------------------------------
// The running (old) process
// ---------------------------------------------------------------------------

/// The successor a running process hands over to, once it serves (step 4
/// done): the main thread drains, then calls [`Successor::finish`].
#[derive(Debug)]
pub struct Successor {
    channel: Channel,
    pub pid: u32,
}

impl Successor {
    /// Step 6: sends what was counted while draining, then `D`.
    pub fn finish(self, state: &dyn StateHandover) -> io::Result<()> {
        send_blob(&self.channel, &state.export_after_drain())?;
        self.channel.send(DONE, b"", &[])
    }
}

/// Where the control thread leaves the successor for the main thread.
pub type SuccessorSlot = Arc<Mutex<Option<Successor>>>;

/// Steps 1–4 on the running process's side, for one connection. Returns the
/// successor once it reports that it serves.
pub fn hand_over(
    channel: Channel,
    listeners: &[HandedListener],
    state: &dyn StateHandover,
) -> Result<Successor, io::Error> {
    channel.set_timeout(Some(STEP_TIMEOUT))?;
    let hello: Hello = serde_json::from_slice(&channel.expect(HELLO)?.payload).map_err(invalid)?;
    if hello.version != PROTOCOL_VERSION {
        // Answer with our own hello in place of the listener list: the new
        // binary names the mismatch.
        let ours = Hello {
            version: PROTOCOL_VERSION,
            pid: std::process::id(),
        };
        channel.send(LISTENERS, &serde_json::to_vec(&ours).map_err(invalid)?, &[])?;
        return Err(invalid(format!(
            "process {} speaks takeover protocol {}, this one {PROTOCOL_VERSION}",
            hello.pid, hello.version
        )));
    }
    let headers: Vec<ListenerHeader> = listeners
        .iter()
        .map(|l| ListenerHeader {
            name: l.name.clone(),
            address: l.address,
            sockets: l.sockets.len(),
            admin: l.admin,
        })
        .collect();
    channel.send(
        LISTENERS,
        &serde_json::to_vec(&headers).map_err(invalid)?,
        &[],
    )?;
    let all: Vec<_> = listeners
        .iter()
        .flat_map(|l| l.sockets.iter().map(AsFd::as_fd))
        .collect();
    for batch in all.chunks(MAX_FDS) {
        channel.send(FDS, b"", batch)?;
    }
    send_blob(&channel, &state.export_at_handover())?;
    channel.expect(READY)?;
    Ok(Successor {
        channel,
        pid: hello.pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A counter that carries its value across a takeover the way the
    /// quota store must.
    #[derive(Default)]
    struct Counter {
        total: AtomicU64,
        at_handover: AtomicU64,
    }

    impl StateHandover for Counter {
        fn export_at_handover(&self) -> Vec<u8> {
            let now = self.total.load(Ordering::SeqCst);
            self.at_handover.store(now, Ordering::SeqCst);
            now.to_le_bytes().to_vec()
        }
        fn import_at_handover(&self, state: &[u8]) -> Result<(), String> {
            let value = u64::from_le_bytes(state.try_into().map_err(|_| "bad length")?);
            self.total.fetch_add(value, Ordering::SeqCst);
            Ok(())
        }
        fn export_after_drain(&self) -> Vec<u8> {
            let delta = self.total.load(Ordering::SeqCst) - self.at_handover.load(Ordering::SeqCst);
            delta.to_le_bytes().to_vec()
        }
        fn import_after_drain(&self, delta: &[u8]) -> Result<(), String> {
            self.import_at_handover(delta)
        }
    }

    // Rule: counts made before the hand-over, by the new process, and by the old one while
    // draining all arrive in the new process exactly once; every socket arrives.
    #[test]
    fn state_and_sockets_cross_a_takeover_exactly() {
        let (new_end, old_end) = Channel::pair().unwrap();
        let sockets: Vec<OwnedFd> = (0..3)
            .map(|_| OwnedFd::from(std::net::TcpListener::bind("127.0.0.1:0").unwrap()))
            .collect();
        let address = "127.0.0.1:1".parse().unwrap();
        let old_state = Arc::new(Counter::default());
        old_state.total.store(40, Ordering::SeqCst);
        let old = {
            let old_state = Arc::clone(&old_state);
            std::thread::spawn(move || {
                let listeners = vec![HandedListener {
                    name: "public".into(),
                    address,
                    sockets,
                    admin: false,
                }];
                let successor = hand_over(old_end, &listeners, old_state.as_ref()).unwrap();
                old_state.total.fetch_add(2, Ordering::SeqCst); // counted while draining
                successor.finish(old_state.as_ref()).unwrap();
            })
        };
        let new_state = Arc::new(Counter::default());
        // The client half of `request`, over the pair instead of a path.
        new_end
            .send(
                HELLO,
                &serde_json::to_vec(&Hello {
                    version: PROTOCOL_VERSION,
                    pid: 7,
                })
                .unwrap(),
                &[],
            )
            .unwrap();
        let headers: Vec<ListenerHeader> =
            serde_json::from_slice(&new_end.expect(LISTENERS).unwrap().payload).unwrap();
        assert_eq!(headers[0].sockets, 3);
        assert_eq!(new_end.expect(FDS).unwrap().fds.len(), 3);
        new_state
            .import_at_handover(&recv_blob(&new_end).unwrap())
            .unwrap();
        new_state.total.fetch_add(5, Ordering::SeqCst); // counted by the new process
        new_end.send(READY, b"", &[]).unwrap();
        new_state
            .import_after_drain(&recv_blob(&new_end).unwrap())
            .unwrap();
        new_end.expect(DONE).unwrap();
        old.join().unwrap();
        assert_eq!(new_state.total.load(Ordering::SeqCst), 40 + 5 + 2);
    }
}
