//! A second descriptor of a plain TCP socket, for what monoio's owned-buffer
//! operations do at a higher cost: a read or write that can complete at once,
//! and a look at an idle pooled connection.
//!
//! **Immediate I/O.** A write to a socket with room in its send buffer, or a
//! read from one known to be readable, completes at once. Through the runtime
//! it is an operation submitted to the ring, a completion reaped on the next
//! turn of the event loop and the connection's task woken and polled again
//! down to that operation; here it is one non-blocking system call
//! (`MSG_DONTWAIT`, whatever the socket's own mode) and the task goes on.
//! Only when the kernel answers "would block" does the caller fall back to
//! the runtime's operation, which waits.
//!
//! Immediate I/O is used on the epoll driver only, where the runtime's
//! operation is the same system call behind more bookkeeping (−1,200
//! user-space instructions per proxied request, docs/performance.md). On
//! io_uring a send or recv of its own is a system call more per operation,
//! where the ring submits many connections' operations in one: measured
//! there, immediate writes lost about 10% of requests per proxy-CPU-second
//! and immediate reads gained nothing, so io_uring workers keep the ring's
//! operations (and client sockets get no second descriptor).
//!
//! **Idle probe.** Nothing may arrive on a keep-alive back-end connection
//! between a complete response and the next request. Bytes that do (a back
//! end answering twice, a body after a 204, a miscounted Content-Length)
//! would be read as the next client's response and shift every later answer
//! on that connection by one, so such a connection is closed instead of
//! reused, as nginx and Envoy do. A peer that closed the idle connection is
//! noticed here too, before a request is written to it: one non-blocking
//! `MSG_PEEK` when the connection is taken from the pool; nothing is consumed.
//!
//! The descriptor is a duplicate taken before the socket is handed to the
//! runtime (the runtime's socket exposes only its number, and this crate
//! forbids `unsafe`), so a plain connection holds two descriptors.

use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};
use std::io;
use std::mem::MaybeUninit;

/// A second descriptor of a plain TCP socket.
#[derive(Debug)]
pub struct SocketHandle {
    fd: OwnedFd,
    /// Reads and writes go through this descriptor at once where they can
    /// (set on the epoll driver only, see the module's notes).
    pub immediate: bool,
    /// A readiness wait reported bytes: the next read tries `recv` at once
    /// (kept here, not in the stream, so that a connection without a
    /// handle stays as small as before).
    pub readable: bool,
}

/// The soft descriptor limit, read once (after start-up raised it).
fn descriptor_limit() -> u64 {
    static LIMIT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        limit.current.unwrap_or(u64::MAX)
    })
}

/// What an idle connection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleState {
    /// Nothing to read: safe to send the next request.
    Clean,
    /// The back end closed its side (or reset it).
    Closed,
    /// Bytes arrived that belong to no request.
    StrayBytes,
}

impl SocketHandle {
    /// `immediate`: the worker runs the epoll driver.
    pub fn new(fd: OwnedFd, immediate: bool) -> Self {
        SocketHandle {
            fd,
            immediate,
            readable: false,
        }
    }

    /// Takes a duplicate of `stream`'s descriptor, before the stream is
    /// handed to the runtime.
    pub fn duplicate(stream: &std::net::TcpStream, immediate: bool) -> io::Result<Self> {
        Ok(SocketHandle::new(stream.try_clone()?.into(), immediate))
    }

    /// Like [`SocketHandle::duplicate`], for a connection that can do
    /// without (a client connection on the epoll driver): `None` once the
    /// process holds half its descriptor limit, so that the copies never
    /// take the descriptors that connections and back-end sockets need
    /// (the budget, `service::preflight::FDS_PER_CONNECTION`, counts none).
    /// Descriptors are numbered lowest-free first, so the copy's number
    /// tells how many are open.
    pub fn duplicate_if_plenty(stream: &std::net::TcpStream) -> Option<Self> {
        let copy = stream.try_clone().ok()?;
        let number = u64::try_from(std::os::fd::AsRawFd::as_raw_fd(&copy)).unwrap_or(u64::MAX);
        if number >= descriptor_limit() / 2 {
            return None;
        }
        Some(SocketHandle::new(copy.into(), true))
    }

    /// Looks at the socket without consuming anything or waiting.
    pub fn idle_state(&self) -> IdleState {
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        loop {
            return match rustix::net::recv(
                &self.fd,
                &mut byte,
                RecvFlags::PEEK | RecvFlags::DONTWAIT,
            ) {
                Err(Errno::AGAIN) => IdleState::Clean,
                Err(Errno::INTR) => continue,
                Ok((_, 0)) => IdleState::Closed,
                Ok(_) => IdleState::StrayBytes,
                Err(_) => IdleState::Closed,
            };
        }
    }

    /// Writes what the socket takes at once from `bytes`, without waiting:
    /// the count written (0 for empty `bytes`), `WouldBlock` when the send
    /// buffer is full. Never raises `SIGPIPE`.
    pub fn send_now(&self, bytes: &[u8]) -> io::Result<usize> {
        loop {
            match rustix::net::send(&self.fd, bytes, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
                Err(Errno::INTR) => continue,
                result => return result.map_err(io::Error::from),
            }
        }
    }

    /// Appends what the socket holds, up to `buf`'s spare capacity (some is
    /// reserved when there is none, so that 0 can only mean the end of the
    /// stream), without waiting: the count read (0 at end of stream),
    /// `WouldBlock` when nothing is there.
    pub fn recv_now(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if buf.len() == buf.capacity() {
            buf.reserve(1);
        }
        loop {
            let spare = rustix::buffer::spare_capacity(buf);
            match rustix::net::recv(&self.fd, spare, RecvFlags::DONTWAIT) {
                Err(Errno::INTR) => continue,
                Ok((read, _)) => return Ok(read),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{ErrorKind, Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream, SocketHandle) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let probe = SocketHandle::new(client.try_clone().unwrap().into(), true);
        (client, server, probe)
    }

    fn settled(probe: &SocketHandle, want: IdleState) -> IdleState {
        // Loopback delivery is immediate, but give the kernel a moment anyway.
        for _ in 0..200 {
            let state = probe.idle_state();
            if state == want {
                return state;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        probe.idle_state()
    }

    #[test]
    fn quiet_connection_is_clean_and_peeking_consumes_nothing() {
        let (mut client, mut server, probe) = pair();
        assert_eq!(probe.idle_state(), IdleState::Clean);
        server.write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        assert_eq!(
            settled(&probe, IdleState::StrayBytes),
            IdleState::StrayBytes
        );
        let mut got = [0u8; 17];
        std::io::Read::read_exact(&mut client, &mut got).unwrap();
        assert_eq!(&got, b"HTTP/1.1 200 OK\r\n");
        assert_eq!(probe.idle_state(), IdleState::Clean);
    }

    #[test]
    fn closed_by_the_back_end() {
        let (_client, server, probe) = pair();
        server.shutdown(Shutdown::Both).unwrap();
        drop(server);
        assert_eq!(settled(&probe, IdleState::Closed), IdleState::Closed);
    }

    #[test]
    fn recv_now_appends_what_is_there_and_never_waits() {
        let (_near, mut far, handle) = pair();
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(b"kept:");
        let nothing = handle.recv_now(&mut buf).unwrap_err();
        assert_eq!(nothing.kind(), ErrorKind::WouldBlock);
        far.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        let mut read = 0;
        for _ in 0..200 {
            match handle.recv_now(&mut buf) {
                Ok(n) => {
                    read += n;
                    if read == 16 {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(buf, b"kept:GET / HTTP/1.1\r\n");
        far.shutdown(Shutdown::Write).unwrap();
        let mut end = None;
        for _ in 0..200 {
            match handle.recv_now(&mut buf) {
                Ok(n) => {
                    end = Some(n);
                    break;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        assert_eq!(end, Some(0), "end of stream reads as 0");
    }

    #[test]
    fn send_now_writes_until_the_buffer_is_full_then_would_block() {
        let (_near, mut far, handle) = pair();
        assert_eq!(handle.send_now(b"").unwrap(), 0);
        assert_eq!(handle.send_now(b"hello").unwrap(), 5);
        let mut got = [0u8; 5];
        far.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello");
        // Nobody reads now: the send and receive buffers fill, then it refuses.
        let chunk = vec![b'x'; 1 << 16];
        let mut sent = 0usize;
        let full = loop {
            match handle.send_now(&chunk) {
                Ok(n) => sent += n,
                Err(e) => break e,
            }
            assert!(sent < 1 << 30, "the socket never filled");
        };
        assert_eq!(full.kind(), ErrorKind::WouldBlock);
        assert!(sent > 0);
    }

    #[test]
    fn send_now_to_a_closed_peer_fails_without_a_signal() {
        let (_near, far, handle) = pair();
        drop(far);
        let mut failed = None;
        for _ in 0..200 {
            if let Err(e) = handle.send_now(b"late") {
                failed = Some(e);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let failed = failed.expect("writing to a closed peer fails");
        assert_ne!(failed.kind(), ErrorKind::WouldBlock);
    }
}
