//! Parsing and validating a back end's response head.
//!
//! Step 7 of a request's way: the upstream exchange hands in the bytes read from
//! the back end; this returns `Partial`, an interim (1xx) head to skip, or a
//! final [`ResponseHead`] with its body framing decided. Anything ambiguous
//! (malformed or conflicting Content-Length, Content-Length with
//! Transfer-Encoding, Transfer-Encoding from an HTTP/1.0 back end, a status
//! line that is not HTTP/1.x) is an error that becomes 502: the gateway never
//! guesses where a response ends.

use super::fields::{list_elements, parse_content_length, trim_ows};
use super::{BodyFraming, Version};
use crate::http::fields::is_named;

/// Header fields a back-end response may carry.
pub const MAX_RESPONSE_HEADERS: usize = 128;

/// Storage for a response's header fields, left uninitialised until parsing.
pub type ResponseHeaderStorage<'b> =
    [std::mem::MaybeUninit<httparse::Header<'b>>; MAX_RESPONSE_HEADERS];

/// A fresh, uninitialised response header storage.
pub fn response_header_storage<'b>() -> ResponseHeaderStorage<'b> {
    [const { std::mem::MaybeUninit::uninit() }; MAX_RESPONSE_HEADERS]
}

/// Why a back end's response head is unusable (→ 502).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid response from back end: {0}")]
pub struct ResponseError(pub &'static str);

/// A complete final response head; slices borrow the read buffer.
#[derive(Debug)]
pub struct ResponseHead<'h, 'b> {
    /// Bytes of the head, including the blank line.
    pub len: usize,
    /// The head as received (`len` bytes): fields passed on unchanged are
    /// copied from it line by line, not written again piece by piece.
    pub raw: &'b [u8],
    pub version: Version,
    pub status: u16,
    pub reason: &'b str,
    pub headers: &'h [httparse::Header<'b>],
    pub body: BodyFraming,
    /// The back end will close, or expects us to (`Connection: close`, or HTTP/1.0
    /// without keep-alive).
    pub close: bool,
    /// A `Connection` field names an option besides `close` and
    /// `keep-alive` (fields it names are hop-by-hop, RFC 9110 §7.6.1).
    pub connection_options: bool,
}

/// Outcome of parsing the bytes read from a back end so far.
#[derive(Debug)]
pub enum ParsedResponse<'h, 'b> {
    Partial,
    /// A 1xx interim response of this many bytes: skip it and parse again.
    Interim(usize),
    Final(ResponseHead<'h, 'b>),
}

/// Parses a response head. `request_was_head` suppresses the body, as do 204
/// and 304 (RFC 9112 §6.3).
pub fn parse_response<'h, 'b>(
    buf: &'b [u8],
    request_was_head: bool,
    headers: &'h mut ResponseHeaderStorage<'b>,
) -> Result<ParsedResponse<'h, 'b>, ResponseError> {
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        headers,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(ParsedResponse::Partial),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ResponseError("too many header fields"))
        }
        Err(_) => return Err(ResponseError("malformed response head")),
    };
    let (Some(minor), Some(status)) = (response.version, response.code) else {
        return Err(ResponseError("incomplete status line"));
    };
    if !(100..=599).contains(&status) {
        return Err(ResponseError("status code out of range"));
    }
    // A protocol switch is final: whoever asked for it decides (see
    // `crate::http::websocket`); nobody else accepts one.
    if status < 200 && status != 101 {
        return Ok(ParsedResponse::Interim(len));
    }
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    let reason = response.reason.unwrap_or("");
    let headers: &'h [httparse::Header<'b>] = response.headers;
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut close_token = false;
    let mut keep_alive_token = false;
    let mut connection_options = false;
    // httparse has refused any value byte outside HTAB / SP / VCHAR /
    // obs-text already (its default configuration: no invalid field skipped,
    // no obs-fold). Field names are told apart by length first.
    for header in headers {
        let name = header.name;
        if !matches!(name.len(), 10 | 14 | 17) {
            continue;
        }
        if is_named(name, "content-length") {
            let n = parse_content_length(header.value)
                .ok_or(ResponseError("malformed Content-Length"))?;
            if content_length.is_some_and(|m| m != n) {
                return Err(ResponseError("conflicting Content-Length"));
            }
            content_length = Some(n);
        } else if is_named(name, "transfer-encoding") {
            // RFC 9112 §6.1: framing an HTTP/1.0 message says it cannot have is faulty.
            if version == Version::Http10 {
                return Err(ResponseError("Transfer-Encoding in an HTTP/1.0 response"));
            }
            transfer_encoding = true;
            let value = trim_ows(header.value);
            chunked = value.eq_ignore_ascii_case(b"chunked");
            if !chunked {
                return Err(ResponseError("unsupported Transfer-Encoding"));
            }
        } else if is_named(name, "connection") {
            for token in list_elements(header.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    close_token = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                } else {
                    connection_options = true;
                }
            }
        }
    }
    // `close` wins wherever it stands; HTTP/1.0 persists only when asked to.
    let mut close = close_token || (version == Version::Http10 && !keep_alive_token);
    let no_body = request_was_head || status == 101 || status == 204 || status == 304;
    if transfer_encoding && content_length.is_some() {
        return Err(ResponseError("both Content-Length and Transfer-Encoding"));
    }
    let body = if no_body {
        BodyFraming::None
    } else if chunked {
        BodyFraming::Chunked
    } else {
        match content_length {
            Some(0) => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
            None => BodyFraming::UntilClose,
        }
    };
    if body == BodyFraming::UntilClose {
        close = true;
    }
    // A bodiless answer (HEAD, 204, 304) that declares a body may come with one
    // anyway from a careless back end: never reuse that connection, or the
    // stray bytes would be read as the next client's response.
    if no_body && (chunked || content_length.is_some_and(|n| n > 0)) {
        close = true;
    }
    Ok(ParsedResponse::Final(ResponseHead {
        len,
        raw: &buf[..len],
        version,
        status,
        reason,
        headers,
        body,
        close,
        connection_options,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8]) -> Result<(u16, BodyFraming, bool), ResponseError> {
        let mut headers = response_header_storage();
        match parse_response(raw, false, &mut headers)? {
            ParsedResponse::Final(h) => Ok((h.status, h.body, h.close)),
            other => panic!("not final: {other:?}"),
        }
    }

    // `close` means close whatever order it comes in, beside `keep-alive`
    // in one field or across two, on HTTP/1.0 and 1.1; HTTP/1.0 persists
    // only with `keep-alive`.
    #[test]
    fn close_wins_over_keep_alive_in_any_order() {
        let framed = "Content-Length: 0\r\n\r\n";
        for version in ["1.0", "1.1"] {
            for fields in [
                "Connection: close, keep-alive\r\n",
                "Connection: keep-alive, close\r\n",
                "Connection: close\r\nConnection: keep-alive\r\n",
                "Connection: keep-alive\r\nConnection: Close\r\n",
            ] {
                let raw = format!("HTTP/{version} 200 OK\r\n{fields}{framed}");
                let (_, _, close) = parse(raw.as_bytes()).unwrap();
                assert!(close, "{raw:?} must close");
            }
        }
        let keep = parse(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(keep, Ok((200, BodyFraming::None, false)));
        let plain10 = parse(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(plain10, Ok((200, BodyFraming::None, true)));
    }

    // Content-Length decides the body length.
    #[test]
    fn content_length_framing() {
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Ok((200, BodyFraming::Length(5), false))
        );
    }

    // Two different Content-Length values are refused.
    #[test]
    fn conflicting_content_length() {
        assert!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n").is_err()
        );
    }

    // Content-Length with Transfer-Encoding is refused.
    #[test]
    fn cl_with_te() {
        assert!(parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .is_err());
    }

    // Without any length the body runs until close.
    #[test]
    fn until_close() {
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\n\r\n"),
            Ok((200, BodyFraming::UntilClose, true))
        );
    }

    // A 204 has no body whatever it declares (and declaring one ends reuse).
    #[test]
    fn no_content_has_no_body() {
        assert_eq!(
            parse(b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
            Ok((204, BodyFraming::None, true))
        );
    }

    // A HEAD answer declaring a body is not reused: its bytes might still come.
    #[test]
    fn bodiless_answer_with_declared_body_closes() {
        let mut headers = response_header_storage();
        let parsed = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 38\r\n\r\n",
            true,
            &mut headers,
        );
        assert!(
            matches!(parsed, Ok(ParsedResponse::Final(h)) if h.close && h.body == BodyFraming::None)
        );
    }

    // A 1xx head is interim.
    #[test]
    fn interim() {
        let mut headers = response_header_storage();
        let raw = b"HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n";
        let parsed = parse_response(raw, false, &mut headers);
        assert!(matches!(parsed, Ok(ParsedResponse::Interim(n)) if n == raw.len()));
    }

    // An HTTP/1.0 response framed with Transfer-Encoding is refused.
    #[test]
    fn transfer_encoding_in_http10_response() {
        assert!(parse(
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
        )
        .is_err());
    }

    // Control bytes and DEL in a value are refused (by httparse's own check).
    #[test]
    fn control_bytes_in_values_refused() {
        for bad in [&b"a\x00b"[..], b"a\x01b", b"a\x7fb", b"a\rb", b"a\x1bb"] {
            let mut raw = b"HTTP/1.1 200 OK\r\nX-A: ".to_vec();
            raw.extend_from_slice(bad);
            raw.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
            assert!(parse(&raw).is_err(), "accepted {bad:?}");
        }
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nX-A: a\tb \x80\xff\r\nContent-Length: 0\r\n\r\n"),
            Ok((200, BodyFraming::None, false))
        );
    }

    // A non-numeric status is refused.
    #[test]
    fn bad_status() {
        assert!(parse(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
    }
}
