//! Passing open sockets between processes: a `SOCK_SEQPACKET` Unix socket
//! whose messages keep their boundaries, each a one-byte kind, a payload, and
//! optionally file descriptors carried with `SCM_RIGHTS`.
//!
//! A descriptor received this way refers to the very same kernel socket as
//! the sender's (same open file description, same accept queue), so a
//! listening socket handed over loses nothing queued on it. Knows nothing of
//! what the messages mean; [`super::takeover`] holds the conversation.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Largest payload of one message.
pub const MAX_PAYLOAD: usize = 60 * 1024;

/// Most descriptors carried by one message (the kernel's cap is 253).
pub const MAX_FDS: usize = 200;

/// One message as received.
#[derive(Debug)]
pub struct Message {
    pub kind: u8,
    pub payload: Vec<u8>,
    pub fds: Vec<OwnedFd>,
}

/// A connected control channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// The listening end of a control socket, bound at a path.
#[derive(Debug)]
pub struct ControlListener {
    fd: OwnedFd,
    path: PathBuf,
}

fn seqpacket() -> io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

impl ControlListener {
    /// Binds `path`, replacing whatever socket file is there (the caller
    /// decides beforehand whether a live one may be replaced). Only the
    /// owner may connect (mode 0600).
    /// Errors name the socket's path (`control socket /run/x.sock: ...`).
    pub fn bind(path: &Path) -> io::Result<ControlListener> {
        Self::bind_unnamed(path).map_err(|e| {
            io::Error::new(e.kind(), format!("control socket {}: {e}", path.display()))
        })
    }

    fn bind_unnamed(path: &Path) -> io::Result<ControlListener> {
        let fd = seqpacket()?;
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        rustix::net::bind(&fd, &SocketAddrUnix::new(path)?)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        rustix::net::listen(&fd, 4)?;
        Ok(ControlListener {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits for the next connection.
    pub fn accept(&self) -> io::Result<Channel> {
        let fd = rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC)?;
        Ok(Channel { fd })
    }
}

impl Channel {
    /// Connects to the control socket at `path`.
    pub fn connect(path: &Path) -> io::Result<Channel> {
        let fd = seqpacket()?;
        rustix::net::connect(&fd, &SocketAddrUnix::new(path)?)?;
        Ok(Channel { fd })
    }

    /// A connected pair (for tests).
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// Bounds every later send and receive (`None`: wait forever).
    pub fn set_timeout(&self, limit: Option<Duration>) -> io::Result<()> {
        use rustix::net::sockopt::{set_socket_timeout, Timeout};
        set_socket_timeout(&self.fd, Timeout::Recv, limit)?;
        set_socket_timeout(&self.fd, Timeout::Send, limit)?;
        Ok(())
    }

    /// Sends one message; `fds` travel with it (at most [`MAX_FDS`]).
    pub fn send(&self, kind: u8, payload: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        if payload.len() > MAX_PAYLOAD || fds.len() > MAX_FDS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "control message too large",
            ));
        }
        let kind = [kind];
        let iov = [IoSlice::new(&kind), IoSlice::new(payload)];
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
            return Err(io::Error::other("descriptors do not fit a control message"));
        }
        let sent = rustix::net::sendmsg(&self.fd, &iov, &mut control, SendFlags::NOSIGNAL)?;
        if sent != 1 + payload.len() {
            return Err(io::Error::other("control message sent in part"));
        }
        Ok(())
    }

    /// Receives one message; an orderly close by the peer is `UnexpectedEof`.
    pub fn recv(&self) -> io::Result<Message> {
        let mut buf = vec![0u8; 1 + MAX_PAYLOAD];
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let received =
            rustix::net::recvmsg(&self.fd, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?;
        let mut fds = Vec::new();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received_fds) = message {
                fds.extend(received_fds);
            }
        }
        if received
            .flags
            .intersects(ReturnFlags::TRUNC | ReturnFlags::CTRUNC)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "control message truncated",
            ));
        }
        if received.bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the other process closed the control connection",
            ));
        }
        buf.truncate(received.bytes);
        let kind = buf[0];
        buf.remove(0);
        Ok(Message {
            kind,
            payload: buf,
            fds,
        })
    }

    /// Receives one message and insists on its kind.
    pub fn expect(&self, kind: u8) -> io::Result<Message> {
        let message = self.recv()?;
        if message.kind != kind {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "expected a `{}` message on the control socket, got `{}`",
                    kind as char, message.kind as char
                ),
            ));
        }
        Ok(message)
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    // Rule: a descriptor sent over the channel refers to the same open file.
    #[test]
    fn descriptors_travel_with_their_message() {
        let (a, b) = Channel::pair().unwrap();
        let (mut mine, theirs) = UnixStream::pair().unwrap();
        a.send(b'F', b"one", &[theirs.as_fd()]).unwrap();
        drop(theirs);
        let message = b.recv().unwrap();
        assert_eq!(
            (message.kind, message.payload.as_slice()),
            (b'F', &b"one"[..])
        );
        let mut received = UnixStream::from(message.fds.into_iter().next().unwrap());
        received.write_all(b"x").unwrap();
        let mut got = [0u8; 1];
        mine.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"x");
    }

    // Rule: a closed peer reads as UnexpectedEof, not as an empty message.
    #[test]
    fn closed_peer_is_eof() {
        let (a, b) = Channel::pair().unwrap();
        drop(a);
        assert_eq!(b.recv().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }
}
