//! WebSocket frame boundaries in a relayed byte stream (RFC 6455 §5.2), and
//! the Close frames the gateway writes itself when the shutdown grace of a
//! relayed WebSocket ends (RFC 6455 §5.5.1, §7.4).
//!
//! The tunnel ([`crate::io::tunnel`]) copies bytes without parsing them; a
//! [`FrameTracker`] per direction reads only the frame headers of what went
//! through (FIN/opcode byte, mask bit, 7-, 16- or 64-bit payload length,
//! masking key) and counts payload bytes down without copying them, so the
//! tunnel knows when the receiver sits between two frames: the only place a
//! frame of the gateway's own may go. Control frames may come between the
//! fragments of a message (§5.4), so a frame boundary is enough.
//!
//! Pure: bytes in, state out; no I/O, no allocation.

/// Close status 1001, Going Away: the gateway is shutting down (§7.4.1).
pub const GOING_AWAY: u16 = 1001;

/// The Close opcode (§5.2).
const OPCODE_CLOSE: u8 = 0x8;

/// Longest frame header: 2 bytes, a 64-bit length, a masking key.
const MAX_HEADER: usize = 14;

/// Where one direction of a relayed WebSocket stands in its frame stream.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameTracker {
    /// Header bytes of the frame being read so far.
    header: [u8; MAX_HEADER],
    header_len: u8,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// The frame in flight is a Close frame.
    in_close: bool,
    /// A whole Close frame went through.
    close_seen: bool,
}

impl FrameTracker {
    pub fn new() -> FrameTracker {
        FrameTracker::default()
    }

    /// True between two frames: nothing of a frame is in flight.
    pub fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0
    }

    /// True once a whole Close frame (header and payload) went through this
    /// direction: one whose payload is still arriving does not count, so the
    /// peer is never left with a Close cut short.
    pub fn close_seen(&self) -> bool {
        self.close_seen
    }

    /// Follows all of `bytes`.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let n = self.feed_to_boundary(bytes);
            bytes = &bytes[n..];
        }
    }

    /// Follows `bytes` up to the first frame boundary after at least one of
    /// them, and returns how many it took: all of them when no frame ends
    /// inside, else the count up to and including the last byte of the frame
    /// that ends first.
    pub fn feed_to_boundary(&mut self, bytes: &[u8]) -> usize {
        let mut taken = 0;
        while taken < bytes.len() {
            if self.payload_left > 0 {
                let rest = (bytes.len() - taken) as u64;
                let n = self.payload_left.min(rest);
                self.payload_left -= n;
                // `n` is at most `rest`, a usize.
                taken += n as usize;
                if self.payload_left == 0 {
                    self.frame_ended();
                    return taken;
                }
                continue;
            }
            self.header[usize::from(self.header_len)] = bytes[taken];
            self.header_len += 1;
            taken += 1;
            let header = &self.header[..usize::from(self.header_len)];
            if let Some((len, payload)) = parsed_header(header) {
                if len == header.len() {
                    self.in_close = self.header[0] & 0x0f == OPCODE_CLOSE;
                    self.header_len = 0;
                    self.payload_left = payload;
                    if payload == 0 {
                        self.frame_ended();
                        return taken;
                    }
                }
            }
        }
        taken
    }
}

impl FrameTracker {
    fn frame_ended(&mut self) {
        self.close_seen |= std::mem::take(&mut self.in_close);
    }
}

/// For a header's first bytes: the full header's length and, once that many
/// bytes are here, the payload length. `None` until the second byte.
fn parsed_header(header: &[u8]) -> Option<(usize, u64)> {
    let second = *header.get(1)?;
    let masked = second & 0x80 != 0;
    let (extended, short) = match second & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let len = 2 + extended + if masked { 4 } else { 0 };
    if header.len() < len {
        return Some((len, 0));
    }
    let payload = short.unwrap_or_else(|| {
        header[2..2 + extended]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
    });
    Some((len, payload))
}

/// A Close frame with `code` from the server's side (to a client): not
/// masked (§5.1).
pub fn close_to_client(code: u16) -> [u8; 4] {
    let [hi, lo] = code.to_be_bytes();
    [0x80 | OPCODE_CLOSE, 2, hi, lo]
}

/// A Close frame with `code` from the client's side (to a server): masked
/// with `mask` (§5.3).
pub fn close_to_server(code: u16, mask: [u8; 4]) -> [u8; 8] {
    let [hi, lo] = code.to_be_bytes();
    let [m0, m1, m2, m3] = mask;
    [
        0x80 | OPCODE_CLOSE,
        0x80 | 2,
        m0,
        m1,
        m2,
        m3,
        hi ^ m0,
        lo ^ m1,
    ]
}

/// A fresh masking key from the system's random source (§5.3 wants it
/// unpredictable); should that fail, one from the clock, which still masks
/// correctly.
pub fn masking_key() -> [u8; 4] {
    let mut key = [0u8; 4];
    if getrandom::fill(&mut key).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x5a5a_5a5a, |d| d.subsec_nanos());
        key = nanos.to_le_bytes();
    }
    key
}

#[cfg(test)]
#[path = "websocket_frames_tests.rs"]
mod tests;
