//! The gateway's own answers: error responses (dated, [`super::date`]),
//! `100 Continue`, and the `Connection` header decision shared by every
//! response writer.

use super::status::reason;
use super::Version;

/// What the response tells the client about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 keep-alive: nothing to say.
    KeepAlive,
    /// HTTP/1.0 keep-alive: must say `Connection: keep-alive`.
    KeepAlive10,
    /// The gateway closes after this response.
    Close,
}

impl Persistence {
    /// The decision for a client of `version` that asked for `keep_alive`.
    pub fn for_client(version: Version, keep_alive: bool) -> Self {
        match (keep_alive, version) {
            (false, _) => Persistence::Close,
            (true, Version::Http11) => Persistence::KeepAlive,
            (true, Version::Http10) => Persistence::KeepAlive10,
        }
    }

    pub fn keeps_alive(self) -> bool {
        self != Persistence::Close
    }

    /// Appends the `Connection` field line this decision needs, if any.
    pub fn write_field(self, out: &mut Vec<u8>) {
        match self {
            Persistence::KeepAlive => {}
            Persistence::KeepAlive10 => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            Persistence::Close => out.extend_from_slice(b"Connection: close\r\n"),
        }
    }
}

/// Appends a status line for `status`.
pub fn write_status_line(out: &mut Vec<u8>, status: u16, reason_phrase: &str) {
    if (100..=999).contains(&status) {
        // Every status the gateway writes: the line's start in one copy.
        let digit = |n: u16| b'0' + (n % 10) as u8;
        let mut start = *b"HTTP/1.1 000 ";
        start[9] = digit(status / 100);
        start[10] = digit(status / 10);
        start[11] = digit(status);
        out.extend_from_slice(&start);
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(digits.format(status).as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(reason_phrase.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `Content-Length: n`.
pub fn write_content_length(out: &mut Vec<u8>, n: u64) {
    const NAME: &[u8] = b"Content-Length: ";
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(n).as_bytes();
    // One copy of the whole line (at most 16 + 20 + 2 bytes).
    let mut line = [0u8; NAME.len() + 20 + 2];
    let end = NAME.len() + digits.len();
    line[..NAME.len()].copy_from_slice(NAME);
    line[NAME.len()..end].copy_from_slice(digits);
    line[end..end + 2].copy_from_slice(b"\r\n");
    out.extend_from_slice(&line[..end + 2]);
}

/// Appends a complete short plain-text response for `status`; extra field lines
/// (already CRLF-terminated) go before the framing fields.
pub fn write_error(
    out: &mut Vec<u8>,
    status: u16,
    extra_fields: &[u8],
    persistence: Persistence,
    head_only: bool,
) {
    let phrase = reason(status);
    write_status_line(out, status, phrase);
    super::date::write_date_field(out);
    out.extend_from_slice(extra_fields);
    out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    let mut digits = itoa::Buffer::new();
    let code = digits.format(status);
    let body_len = code.len() + 1 + phrase.len() + 1;
    write_content_length(out, body_len as u64);
    persistence.write_field(out);
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(code.as_bytes());
        out.push(b' ');
        out.extend_from_slice(phrase.as_bytes());
        out.push(b'\n');
    }
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    // An error response is complete, framed and says whether it closes.
    #[test]
    fn error_response_bytes() {
        let mut out = Vec::new();
        write_error(&mut out, 404, b"", Persistence::Close, false);
        let date = out.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
        assert!(out[date..].starts_with(b"Date: "));
        out.drain(date..date + 37);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\nConnection: close\r\n\r\n404 Not Found\n"
        );
    }

    // The status line's start is written in one copy for three-digit codes,
    // digit by digit otherwise; the same bytes either way.
    #[test]
    fn status_lines() {
        let line = |status, reason| {
            let mut out = Vec::new();
            write_status_line(&mut out, status, reason);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(line(200, "OK"), "HTTP/1.1 200 OK\r\n");
        assert_eq!(
            line(101, "Switching Protocols"),
            "HTTP/1.1 101 Switching Protocols\r\n"
        );
        assert_eq!(line(599, ""), "HTTP/1.1 599 \r\n");
        assert_eq!(line(999, "x"), "HTTP/1.1 999 x\r\n");
        assert_eq!(line(42, "x"), "HTTP/1.1 42 x\r\n");
        assert_eq!(line(1000, "x"), "HTTP/1.1 1000 x\r\n");
    }

    #[test]
    fn content_length_lines() {
        for n in [0, 7, 1_000_000, u64::MAX] {
            let mut out = b"kept".to_vec();
            write_content_length(&mut out, n);
            assert_eq!(out, format!("keptContent-Length: {n}\r\n").into_bytes());
        }
    }
}
