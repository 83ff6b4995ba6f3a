//! A client connection: plain TCP or TLS, and the read buffer the response
//! parser works on. Knows nothing about HTTP.

use crate::tls::{TlsClient, TlsStream};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::io;
use std::net::SocketAddr;

/// Read buffer capacity of a connection (grows for large answers).
const READ_CAPACITY: usize = 16 * 1024;

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum OpenError {
    Connect,
    Tls,
}

/// One open connection and its unconsumed input.
pub struct Connection {
    io: Io,
    buf: Vec<u8>,
    start: usize,
}

impl Connection {
    /// Connects to `addr`, with a TLS handshake when `tls` is given.
    pub async fn open(addr: SocketAddr, tls: Option<&TlsClient>) -> Result<Connection, OpenError> {
        let tcp = TcpStream::connect_addr(addr)
            .await
            .map_err(|_| OpenError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let io = match tls {
            None => Io::Plain(tcp),
            // Boxed: the handshake's state is large and would otherwise
            // be part of every request's future.
            Some(client) => Io::Tls(Box::new(
                Box::pin(client.connect(tcp))
                    .await
                    .map_err(|_| OpenError::Tls)?,
            )),
        };
        Ok(Connection {
            io,
            buf: Vec::with_capacity(READ_CAPACITY),
            start: 0,
        })
    }

    /// Sends `out` whole; gives the buffer back for the next request.
    pub async fn write_all(&mut self, out: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match &mut self.io {
            Io::Plain(tcp) => {
                let (result, out) = tcp.write_all(out).await;
                (result.map(|_| ()), out)
            }
            Io::Tls(tls) => (tls.write_all(&out).await, out),
        }
    }

    /// Bytes read and not consumed yet.
    pub fn pending(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    /// Drops the first `n` pending bytes.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes after the pending ones; 0 at end of stream.
    pub async fn read_more(&mut self) -> io::Result<usize> {
        if self.start > 0 && self.buf.len() == self.buf.capacity() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        if self.buf.len() == self.buf.capacity() {
            self.buf.reserve(self.buf.capacity().max(READ_CAPACITY));
        }
        match &mut self.io {
            Io::Plain(tcp) => {
                let buf = std::mem::take(&mut self.buf);
                let filled = buf.len();
                let (result, slice) = tcp.read(buf.slice_mut(filled..)).await;
                self.buf = slice.into_inner();
                result
            }
            Io::Tls(tls) => tls.read_into(&mut self.buf).await,
        }
    }
}
