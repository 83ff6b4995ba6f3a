//! Whether an idle pooled back-end connection is still clean: nothing may
//! arrive on a keep-alive connection between a complete response and the next
//! request. Bytes that do (a back end answering twice, a body after a 204, a
//! miscounted Content-Length) would be read as the next client's response and
//! shift every later answer on that connection by one, so such a connection
//! is closed instead of reused, as nginx and Envoy do. A peer that closed the
//! idle connection is noticed here too, before a request is written to it.
//!
//! The probe is a duplicate of the socket's descriptor (taken when the
//! connection is made), asked with one non-blocking `MSG_PEEK` when the
//! connection is taken from the pool; nothing is consumed.

use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::RecvFlags;
use std::mem::MaybeUninit;

/// A second descriptor of an upstream connection's socket.
#[derive(Debug)]
pub struct IdleProbe(OwnedFd);

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

impl IdleProbe {
    pub fn new(fd: OwnedFd) -> Self {
        IdleProbe(fd)
    }

    /// Looks at the socket without consuming anything or waiting.
    pub fn state(&self) -> IdleState {
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        loop {
            return match rustix::net::recv(
                &self.0,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{Shutdown, TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream, IdleProbe) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let probe = IdleProbe::new(client.try_clone().unwrap().into());
        (client, server, probe)
    }

    fn settled(probe: &IdleProbe, want: IdleState) -> IdleState {
        // Loopback delivery is immediate, but give the kernel a moment anyway.
        for _ in 0..200 {
            let state = probe.state();
            if state == want {
                return state;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        probe.state()
    }

    #[test]
    fn quiet_connection_is_clean_and_peeking_consumes_nothing() {
        let (mut client, mut server, probe) = pair();
        assert_eq!(probe.state(), IdleState::Clean);
        server.write_all(b"HTTP/1.1 200 OK\r\n").unwrap();
        assert_eq!(
            settled(&probe, IdleState::StrayBytes),
            IdleState::StrayBytes
        );
        let mut got = [0u8; 17];
        std::io::Read::read_exact(&mut client, &mut got).unwrap();
        assert_eq!(&got, b"HTTP/1.1 200 OK\r\n");
        assert_eq!(probe.state(), IdleState::Clean);
    }

    #[test]
    fn closed_by_the_back_end() {
        let (_client, server, probe) = pair();
        server.shutdown(Shutdown::Both).unwrap();
        drop(server);
        assert_eq!(settled(&probe, IdleState::Closed), IdleState::Closed);
    }
}
