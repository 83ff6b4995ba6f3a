//! A small blocking DNS client: asks each DNS server in turn for a name's
//! A and AAAA records over UDP (with a timeout, answers to other questions
//! ignored), again over TCP when the answer comes back truncated, and
//! returns the addresses with the lowest record TTL.
//!
//! Blocking on purpose: it runs on the resolver thread and on the threads
//! that compile a configuration (main, control), never on a worker.

use super::wire::{self, Answer, Family, WireError};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Why a name got no answer.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("DNS server {server}: {error}")]
    Io {
        server: SocketAddr,
        error: std::io::Error,
    },
    #[error("no DNS server to ask")]
    NoServer,
}

/// The addresses of a name and the lowest TTL of the records that gave them
/// (none when the name has no address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub addrs: Vec<IpAddr>,
    pub ttl: Option<u32>,
}

/// Looks `host` up on the first of `servers` that answers (a server that
/// says the name does not exist has answered). Addresses sorted, IPv4 first.
pub fn lookup(servers: &[SocketAddr], host: &str, timeout: Duration) -> Result<Lookup, DnsError> {
    let name = wire::absolute_name(host)?;
    let mut last = DnsError::NoServer;
    for &server in servers {
        let v4 = match ask(server, &name, Family::V4, timeout) {
            Ok(found) => found,
            Err(e) => {
                last = e;
                continue;
            }
        };
        // A server that answers A but not AAAA still gave an answer.
        let v6 = ask(server, &name, Family::V6, timeout).unwrap_or(Lookup {
            addrs: Vec::new(),
            ttl: None,
        });
        let mut addrs: Vec<IpAddr> = v4.addrs.into_iter().chain(v6.addrs).collect();
        addrs.sort();
        addrs.dedup();
        let ttl = match (v4.ttl, v6.ttl) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        return Ok(Lookup { addrs, ttl });
    }
    Err(last)
}

/// One question to one server: UDP, then TCP if the answer was truncated.
fn ask(
    server: SocketAddr,
    name: &hickory_proto::rr::Name,
    family: Family,
    timeout: Duration,
) -> Result<Lookup, DnsError> {
    let io = |error| DnsError::Io { server, error };
    let id = getrandom::u32().map_err(|e| io(std::io::Error::other(e)))? as u16;
    let query = wire::encode_query(id, name, family)?;
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).map_err(io)?;
    socket.connect(server).map_err(io)?;
    socket.send(&query).map_err(io)?;
    let deadline = Instant::now() + timeout;
    let mut buffer = vec![0u8; usize::from(wire::UDP_PAYLOAD)];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io(std::io::ErrorKind::TimedOut.into()));
        }
        socket.set_read_timeout(Some(left)).map_err(io)?;
        let n = socket.recv(&mut buffer).map_err(io)?;
        match wire::read_answer(&buffer[..n], id, name, family) {
            Ok(Answer::NotOurs) | Err(WireError::Malformed(_)) => continue,
            Ok(Answer::Found { addrs, ttl }) => return Ok(Lookup { addrs, ttl }),
            Ok(Answer::Truncated) => return ask_tcp(server, &query, id, name, family, deadline),
            Err(e) => return Err(e.into()),
        }
    }
}

/// The same question over TCP (two-byte length before each message).
fn ask_tcp(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &hickory_proto::rr::Name,
    family: Family,
    deadline: Instant,
) -> Result<Lookup, DnsError> {
    let io = |error| DnsError::Io { server, error };
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero())
            .then_some(left)
            .ok_or_else(|| io(std::io::ErrorKind::TimedOut.into()))
    };
    let mut stream = TcpStream::connect_timeout(&server, left()?).map_err(io)?;
    stream.set_write_timeout(Some(left()?)).map_err(io)?;
    let length = u16::try_from(query.len()).map_err(|e| io(std::io::Error::other(e)))?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).map_err(io)?;
    stream.set_read_timeout(Some(left()?)).map_err(io)?;
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).map_err(io)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut answer).map_err(io)?;
    match wire::read_answer(&answer, id, name, family)? {
        Answer::Found { addrs, ttl } => Ok(Lookup { addrs, ttl }),
        Answer::NotOurs | Answer::Truncated => Err(WireError::Malformed(
            "the TCP answer is not a whole answer to the question".into(),
        )
        .into()),
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
