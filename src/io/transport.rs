//! The byte stream under a [`crate::io::buffered::BufferedStream`]: a plain TCP
//! socket or TLS over one. HTTP code reads and writes through it without
//! knowing which; the plain arm is the socket's own owned-buffer I/O, with no
//! extra copy. The TLS arm's futures are boxed: unboxed, they made every read
//! and write future of both transports as large as the TLS arm's, and futures
//! are copied whole when they are moved into place, which cost the plain proxy
//! path about 190 more instructions per request (libc `memcpy` 935 → 1,129,
//! callgrind, docs/performance.md); a TLS request pays an allocation per read
//! and write instead, next to its record encryption.

use crate::io::tls_stream::TlsStream;
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::io;

/// A connection's transport.
pub enum Transport {
    Plain(TcpStream),
    /// Boxed: a TLS connection is large and rare next to the plain hot path.
    Tls(Box<TlsStream>),
}

impl Transport {
    /// Appends bytes read after `buf`'s length, up to its capacity. Returns 0 at
    /// end of stream.
    pub async fn read_append(&mut self, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Transport::Plain(stream) => {
                let filled = buf.len();
                let (result, slice) = stream.read(buf.slice_mut(filled..)).await;
                (result, slice.into_inner())
            }
            Transport::Tls(tls) => Box::pin(tls.read_append(buf)).await,
        }
    }

    /// Writes all of `out[from..]`; returns `out` for reuse.
    pub async fn write_all(&mut self, out: Vec<u8>, from: usize) -> (io::Result<()>, Vec<u8>) {
        match self {
            Transport::Plain(stream) => {
                let (result, rest) = stream.write_all(out.slice(from..)).await;
                (result.map(|_| ()), rest.into_inner())
            }
            Transport::Tls(tls) => {
                let mut out = out;
                out.drain(..from);
                Box::pin(tls.write_all(out)).await
            }
        }
    }

    /// Shuts the write side (after `close_notify` on TLS).
    pub async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.shutdown().await,
            Transport::Tls(tls) => Box::pin(tls.shutdown()).await,
        }
    }

    /// Waits until a read would find something (bytes, or the end of the
    /// stream) without handing the kernel a buffer: an io_uring poll, or the
    /// epoll driver's readiness. On TLS, bytes rustls already holds count.
    pub async fn readable(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.readable(false).await,
            Transport::Tls(tls) => tls.readable().await,
        }
    }

    /// Between requests: frees the transport's own buffers (TLS ciphertext
    /// buffers), so that an idle connection holds as little as the TLS
    /// library lets it.
    pub fn release_idle_buffers(&mut self) {
        if let Transport::Tls(tls) = self {
            tls.release_idle_buffers();
        }
    }

    /// The TLS session, if this transport has one.
    pub fn tls(&self) -> Option<&TlsStream> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(tls) => Some(tls),
        }
    }
}
