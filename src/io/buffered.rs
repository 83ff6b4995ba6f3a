//! A TCP stream with its read buffer and a deadline on every read and write;
//! the one I/O primitive for both sides of the proxy (client connections and
//! upstream connections).
//!
//! On the epoll driver, on a plain socket with a [`SocketHandle`], a write
//! first goes out as an immediate non-blocking `send`, and a read after a
//! readiness wait ([`BufferedStream::note_readable`]) first tries an immediate
//! `recv`; the runtime's operation (which waits) takes over only for what
//! would block.
//!
//! The read buffer holds `buf[start..]` unconsumed bytes (the rest of a head, a
//! body, or pipelined requests). Readers append after them and consume from the
//! front; nothing is copied until the buffer must be compacted. It knows
//! nothing about HTTP.

use crate::io::socket_handle::SocketHandle;
use crate::io::transport::Transport;
use crate::time::deadline::{TaskTimer, Tick};
use std::io;

/// Room a read into an empty buffer asks for (a typical request head).
pub const INITIAL_READ_CAPACITY: usize = 2048;

/// Capacity used while streaming a body through.
pub const BODY_READ_CAPACITY: usize = 64 * 1024;

/// A socket (plain or TLS) and its read buffer.
pub struct BufferedStream {
    pub stream: Transport,
    buf: Vec<u8>,
    start: usize,
    /// A second descriptor of the socket: immediate reads and writes on a
    /// plain transport; on back-end connections also how the pool checks
    /// the connection is still clean before reusing it.
    pub handle: Option<SocketHandle>,
}

/// Why a read or write did not complete.
#[derive(Debug)]
pub enum IoFailure {
    TimedOut,
    Closed,
    Io(io::Error),
}

impl BufferedStream {
    pub fn new(stream: Transport, capacity: usize) -> Self {
        BufferedStream {
            stream,
            buf: Vec::with_capacity(capacity),
            start: 0,
            handle: None,
        }
    }

    /// Bytes read but not consumed yet.
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

    /// Between requests: hands the read buffer over (for the worker's free
    /// list), so that an idle connection holds none; `None` while bytes are
    /// pending or when the stream holds no buffer.
    pub fn take_idle_buffer(&mut self) -> Option<Vec<u8>> {
        if self.start < self.buf.len() || self.buf.capacity() == 0 {
            return None;
        }
        self.start = 0;
        Some(std::mem::take(&mut self.buf))
    }

    /// Gives the stream a buffer to read into (`take` is called only when it
    /// holds none).
    pub fn provide_buffer(&mut self, take: impl FnOnce() -> Vec<u8>) {
        if self.buf.capacity() == 0 {
            let mut buf = take();
            buf.clear();
            self.buf = buf;
            self.start = 0;
        }
    }

    /// A readiness wait just reported something to read: the next read
    /// tries an immediate `recv` before the runtime's operation.
    pub fn note_readable(&mut self) {
        if let Some(handle) = &mut self.handle {
            handle.readable = true;
        }
    }

    /// Reads more bytes after the pending ones, making room for at least
    /// `want_capacity` bytes in total. Returns the number read, failing with
    /// `Closed` at end of stream and `TimedOut` at `deadline`.
    pub async fn read_more(
        &mut self,
        want_capacity: usize,
        timer: &TaskTimer,
        deadline: Tick,
    ) -> Result<usize, IoFailure> {
        if self.buf.len() == self.buf.capacity() || self.buf.capacity() < want_capacity {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let target = want_capacity.max(self.buf.len() + 1024);
            self.buf.reserve(target.saturating_sub(self.buf.len()));
        }
        let noted = self
            .handle
            .as_mut()
            .is_some_and(|h| std::mem::take(&mut h.readable));
        if noted {
            if let Some(handle) = immediate(&self.stream, &self.handle) {
                match handle.recv_now(&mut self.buf) {
                    Ok(0) => return Err(IoFailure::Closed),
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(IoFailure::Io(e)),
                }
            }
        }
        let buf = std::mem::take(&mut self.buf);
        let read = timer.within(deadline, self.stream.read_append(buf)).await;
        match read {
            Ok((result, buf)) => {
                self.buf = buf;
                match result {
                    Ok(0) => Err(IoFailure::Closed),
                    Ok(n) => Ok(n),
                    Err(e) => Err(IoFailure::Io(e)),
                }
            }
            Err(_) => {
                self.start = 0;
                Err(IoFailure::TimedOut)
            }
        }
    }

    /// Writes all of `out` before `deadline`; returns the buffer for reuse (a
    /// fresh one when the write timed out and the kernel still owned it).
    pub async fn write_all(
        &mut self,
        out: Vec<u8>,
        timer: &TaskTimer,
        deadline: Tick,
    ) -> (Result<(), IoFailure>, Vec<u8>) {
        let mut written = 0;
        if let Some(handle) = immediate(&self.stream, &self.handle) {
            while written < out.len() {
                match handle.send_now(&out[written..]) {
                    Ok(0) => break,
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return (Err(IoFailure::Io(e)), out),
                }
            }
            if written == out.len() {
                return (Ok(()), out);
            }
        }
        write_all_within(&mut self.stream, out, written, timer, deadline).await
    }
}

impl BufferedStream {
    /// Closes after an error answer without losing it: the write side is shut
    /// (the answer is flushed, then FIN), and whatever the peer still sends is
    /// read and discarded, up to `max_bytes` or `deadline`, so that the kernel
    /// does not answer unread data with a reset that could destroy the answer
    /// before the client read it.
    pub async fn linger_close(&mut self, timer: &TaskTimer, deadline: Tick, max_bytes: usize) {
        if timer
            .within(deadline, self.stream.shutdown())
            .await
            .is_err()
        {
            return;
        }
        self.start = 0;
        self.buf.clear();
        let mut discarded = 0;
        while discarded < max_bytes {
            match self.read_more(INITIAL_READ_CAPACITY, timer, deadline).await {
                Ok(n) => {
                    discarded += n;
                    self.buf.clear();
                }
                Err(_) => return,
            }
        }
    }
}

/// The second descriptor, where immediate I/O is on and bypasses nothing
/// (a plain socket; never TLS, whose bytes must pass through rustls). Takes
/// the fields, not the stream, so that the read buffer stays borrowable.
fn immediate<'h>(stream: &Transport, handle: &'h Option<SocketHandle>) -> Option<&'h SocketHandle> {
    match stream {
        Transport::Plain(_) => handle.as_ref().filter(|h| h.immediate),
        Transport::Tls(_) => None,
    }
}

/// Writes `out[from..]` to `stream` before `deadline`, returning the buffer.
async fn write_all_within(
    stream: &mut Transport,
    out: Vec<u8>,
    from: usize,
    timer: &TaskTimer,
    deadline: Tick,
) -> (Result<(), IoFailure>, Vec<u8>) {
    match timer.within(deadline, stream.write_all(out, from)).await {
        Ok((Ok(()), out)) => (Ok(()), out),
        Ok((Err(e), out)) => (Err(IoFailure::Io(e)), out),
        Err(_) => (Err(IoFailure::TimedOut), Vec::new()),
    }
}
