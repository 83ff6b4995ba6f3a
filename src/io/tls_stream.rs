//! A rustls connection driven over a monoio TCP stream with owned buffers:
//! ciphertext is read into and written from buffers this type owns, rustls
//! turns it into plaintext (`read_tls` / `process_new_packets` / `write_tls`).
//!
//! Used by [`crate::io::transport::Transport`] for both sides of the proxy (client
//! connections on TLS listeners, connections to `https://` back ends). It knows
//! nothing about HTTP. Safe code only: plaintext is copied out of rustls with
//! `BufRead::fill_buf`, never through raw pointers. A cancelled operation (a
//! deadline passed) may lose buffered bytes; the caller then closes the
//! connection, as it does for a plain socket.

use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use rustls::Connection;
use std::io::{self, BufRead, Write};

/// Ciphertext read from the socket per read: one full TLS record and its header.
const CIPHERTEXT_READ: usize = 16 * 1024 + 512;

/// A TCP stream carrying TLS.
pub struct TlsStream {
    tcp: TcpStream,
    conn: Connection,
    /// Ciphertext read from the socket that rustls has not taken yet.
    incoming: Vec<u8>,
    /// Ciphertext on its way to the socket (reused between writes).
    outgoing: Vec<u8>,
    /// The peer closed its side of the TCP stream.
    eof: bool,
}

impl TlsStream {
    pub fn new(tcp: TcpStream, conn: impl Into<Connection>) -> Self {
        TlsStream {
            tcp,
            conn: conn.into(),
            incoming: Vec::new(),
            outgoing: Vec::new(),
            eof: false,
        }
    }

    /// The rustls connection (peer certificates, SNI, negotiated version).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs the handshake to its end (both directions flushed).
    pub async fn handshake(&mut self) -> io::Result<()> {
        while self.conn.is_handshaking() {
            if self.conn.wants_write() {
                self.flush_tls().await?;
            } else if self.conn.wants_read() {
                if self.eof {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "peer closed the connection during the TLS handshake",
                    ));
                }
                if self.incoming.capacity() == 0 {
                    // No buffer while the peer has not sent its next flight.
                    self.tcp.readable(false).await?;
                }
                self.receive().await?;
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "TLS handshake stalled",
                ));
            }
        }
        self.flush_tls().await
    }

    /// Waits until a read has something to work on: ciphertext or plaintext
    /// already held, the end of the stream, or a readable socket.
    pub async fn readable(&mut self) -> io::Result<()> {
        if self.holds_input() {
            return Ok(());
        }
        self.tcp.readable(false).await
    }

    /// Whether a read can go on without the socket: ciphertext not yet
    /// processed, plaintext not yet read, or the end of the stream seen.
    fn holds_input(&mut self) -> bool {
        if !self.incoming.is_empty() || self.eof {
            return true;
        }
        !matches!(self.conn.reader().fill_buf(), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Frees the ciphertext buffers while nothing is in them (between requests).
    pub fn release_idle_buffers(&mut self) {
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        self.outgoing = Vec::new();
    }

    /// Appends decrypted bytes to `buf`, up to its capacity. Returns 0 when the
    /// peer closed the connection (with or without `close_notify`).
    pub async fn read_append(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        loop {
            let mut copied = 0;
            let mut closed = false;
            let room = buf.capacity() - buf.len();
            let mut reader = self.conn.reader();
            while copied < room {
                match reader.fill_buf() {
                    Ok([]) => {
                        closed = true;
                        break;
                    }
                    Ok(chunk) => {
                        let n = chunk.len().min(room - copied);
                        buf.extend_from_slice(&chunk[..n]);
                        reader.consume(n);
                        copied += n;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // Closed without close_notify: for HTTP the framing tells
                    // whether anything was cut short.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        closed = true;
                        break;
                    }
                    Err(e) => return (Err(e), buf),
                }
            }
            if copied > 0 || room == 0 {
                return (Ok(copied), buf);
            }
            if closed || self.eof {
                return (Ok(0), buf);
            }
            if let Err(e) = self.receive().await {
                return (Err(e), buf);
            }
            // Post-handshake messages (session tickets, key updates) may need an answer.
            if self.conn.wants_write() {
                if let Err(e) = self.flush_tls().await {
                    return (Err(e), buf);
                }
            }
        }
    }

    /// Encrypts and sends all of `out`; returns it for reuse.
    pub async fn write_all(&mut self, out: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let mut offset = 0;
        while offset < out.len() {
            let accepted = match self.conn.writer().write(&out[offset..]) {
                Ok(n) => n,
                Err(e) => return (Err(e), out),
            };
            offset += accepted;
            if accepted == 0 && !self.conn.wants_write() {
                return (
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "TLS connection accepts no more data",
                    )),
                    out,
                );
            }
            if let Err(e) = self.flush_tls().await {
                return (Err(e), out);
            }
        }
        (Ok(()), out)
    }

    /// Sends `close_notify`, then shuts the TCP write side.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush_tls().await?;
        self.tcp.shutdown().await
    }

    /// Writes every pending TLS record to the socket.
    async fn flush_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            let mut out = std::mem::take(&mut self.outgoing);
            out.clear();
            self.conn.write_tls(&mut out)?;
            let (result, out) = self.tcp.write_all(out).await;
            self.outgoing = out;
            result?;
        }
        Ok(())
    }

    /// Reads ciphertext (unless some is still waiting) and lets rustls
    /// process it. A protocol error sends rustls's alert before failing.
    async fn receive(&mut self) -> io::Result<()> {
        if self.incoming.is_empty() {
            let mut buf = std::mem::take(&mut self.incoming);
            buf.clear();
            buf.reserve(CIPHERTEXT_READ);
            let (result, buf) = self.tcp.read(buf).await;
            self.incoming = buf;
            if result? == 0 {
                self.eof = true;
                // An empty read tells rustls that the peer is gone.
                self.conn.read_tls(&mut io::empty())?;
                return self.process().await;
            }
        }
        let mut consumed = 0;
        let mut failure = None;
        while consumed < self.incoming.len() {
            let mut rest = &self.incoming[consumed..];
            let before = rest.len();
            match self.conn.read_tls(&mut rest) {
                Ok(0) => break,
                Ok(_) => consumed += before - rest.len(),
                // rustls holds as much plaintext as it may: keep the rest for later.
                Err(e) if e.kind() == io::ErrorKind::Other => break,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.conn.process_new_packets() {
                failure = Some(e);
                break;
            }
        }
        if consumed == 0 && failure.is_none() && !self.incoming.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS records could not be processed",
            ));
        }
        self.incoming.drain(..consumed);
        match failure {
            None => Ok(()),
            Some(e) => {
                let _ = self.flush_tls().await;
                Err(io::Error::new(io::ErrorKind::InvalidData, e))
            }
        }
    }

    async fn process(&mut self) -> io::Result<()> {
        if let Err(e) = self.conn.process_new_packets() {
            let _ = self.flush_tls().await;
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(())
    }
}
