//! Opening a connection to a back end: a non-blocking `connect` completed by
//! the worker's driver (a readiness wait), keeping a duplicate descriptor as
//! the connection's [`SocketHandle`] (immediate reads and writes, and the
//! check of the connection when it is taken from the pool).
//!
//! The socket ends in the mode the worker's driver expects, like accepted
//! client sockets: blocking under io_uring (its operations never block the
//! thread), non-blocking under epoll.

use super::socket_handle::SocketHandle;
use monoio::net::TcpStream;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// Connects to `addr`; `nonblocking` on the epoll driver.
pub async fn connect(addr: SocketAddr, nonblocking: bool) -> io::Result<(TcpStream, SocketHandle)> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    let std_stream: std::net::TcpStream = socket.into();
    let probe_fd = std_stream.try_clone()?;
    let stream = TcpStream::from_std(std_stream)?;
    stream.writable(false).await?;
    let probe_socket = SockRef::from(&probe_fd);
    if let Some(e) = probe_socket.take_error()? {
        return Err(e);
    }
    // A wake-up that left the socket neither connected nor failed is refused
    // here (no peer: ENOTCONN) rather than found by the first write.
    probe_socket.peer_addr()?;
    if !nonblocking {
        probe_socket.set_nonblocking(false)?;
    }
    Ok((stream, SocketHandle::new(probe_fd.into(), nonblocking)))
}
