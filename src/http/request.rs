//! Parsing and validating a client's request head.
//!
//! Step 3 of a request's way: the connection hands in the unconsumed bytes of
//! its read buffer; this returns `Partial` (read more), a validated
//! [`RequestHead`] borrowing the buffer, or a [`RequestError`] that decides the
//! status code. Framing is strict, because a gateway that reads a body length
//! differently from its back end is a request-smuggling hole: every ambiguity is
//! rejected here, before a byte is forwarded.

use super::authority::{is_valid_authority, split_target};
use super::fields::{is_token, list_elements, parse_content_length, MAX_CONNECTION_TOKENS};
use super::path::has_dot_segment;
use super::{BodyFraming, Version};
use crate::http::fields::is_named;
use std::mem::MaybeUninit;

/// Most header fields a request may carry (the configured limit is capped to it).
pub const MAX_HEADERS: usize = 256;

/// Storage for parsed header fields, kept uninitialised until parsing.
pub type HeaderStorage<'b> = [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS];

/// A fresh, uninitialised header storage.
pub fn header_storage<'b>() -> HeaderStorage<'b> {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

/// Limits that apply while parsing a head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    pub max_head_bytes: usize,
    pub max_uri_bytes: usize,
    pub max_headers: usize,
}

/// Why a request head was refused. Every variant is the client's fault and
/// ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("request head too large")]
    HeadTooLarge,
    #[error("request target too long")]
    UriTooLong,
    #[error("unsupported transfer coding")]
    UnsupportedCoding,
    #[error("unsupported HTTP version")]
    VersionNotSupported,
    #[error("unsupported expectation")]
    ExpectationFailed,
    /// CONNECT: the gateway opens no tunnels (RFC 9110 §9.3.6).
    #[error("method not implemented")]
    MethodNotImplemented,
}

impl RequestError {
    /// The status code a client gets for this error.
    pub fn status(self) -> u16 {
        match self {
            RequestError::BadRequest(_) => 400,
            RequestError::HeadTooLarge => 431,
            RequestError::UriTooLong => 414,
            RequestError::UnsupportedCoding => 501,
            RequestError::VersionNotSupported => 505,
            RequestError::ExpectationFailed => 417,
            RequestError::MethodNotImplemented => 501,
        }
    }
}

/// A complete, validated request head; every slice borrows the read buffer.
#[derive(Debug)]
pub struct RequestHead<'h, 'b> {
    /// Bytes of the head, including the blank line; the body starts here.
    pub len: usize,
    pub method: &'b str,
    pub version: Version,
    /// Path of the target (origin-form, or the path part of an absolute-form target).
    pub path: &'b str,
    /// Query string without the `?`, if any.
    pub query: Option<&'b str>,
    /// The authority the client addressed: absolute-form target, else `Host`.
    pub host: Option<&'b str>,
    pub headers: &'h [httparse::Header<'b>],
    pub body: BodyFraming,
    /// The client wants the connection kept open after this exchange.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue`.
    pub expect_continue: bool,
    /// A `Connection` field names an option besides `close`/`keep-alive`.
    pub connection_options: bool,
    /// A `Connection` field lists `upgrade` (a WebSocket opening needs it).
    pub connection_upgrade: bool,
}

impl RequestHead<'_, '_> {
    /// Methods that may be retried on a fresh connection (RFC 9110 §9.2.2).
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self.method,
            "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
        )
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }
}

/// Outcome of trying to parse the bytes read so far.
#[derive(Debug)]
pub enum Parsed<'h, 'b> {
    /// The head is not complete yet: read more.
    Partial,
    Complete(RequestHead<'h, 'b>),
}

/// Parses and validates the request head at the start of `buf`.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    limits: &HeadLimits,
    storage: &'h mut HeaderStorage<'b>,
) -> Result<Parsed<'h, 'b>, RequestError> {
    let max_headers = limits.max_headers.min(MAX_HEADERS);
    let mut request = httparse::Request::new(&mut []);
    let status = request.parse_with_uninit_headers(buf, &mut storage[..max_headers]);
    let len = match status {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= limits.max_head_bytes {
                Err(oversize(buf, limits))
            } else if request_line_too_long(buf, limits) {
                Err(RequestError::UriTooLong)
            } else {
                Ok(Parsed::Partial)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(httparse::Error::Token) if is_http09(buf) => {
            return Err(RequestError::VersionNotSupported)
        }
        Err(e) => return Err(RequestError::BadRequest(e.description_str_static())),
    };
    if len > limits.max_head_bytes {
        return Err(oversize(buf, limits));
    }
    let (Some(method), Some(target), Some(minor)) = (request.method, request.path, request.version)
    else {
        return Err(RequestError::BadRequest("incomplete request line"));
    };
    let version = if minor == 0 {
        Version::Http10
    } else {
        Version::Http11
    };
    if target.len() > limits.max_uri_bytes {
        return Err(RequestError::UriTooLong);
    }
    // Methods are case-sensitive (RFC 9110 §9.1): only `CONNECT` asks for a tunnel.
    if method == "CONNECT" {
        return Err(RequestError::MethodNotImplemented);
    }
    let headers: &'h [httparse::Header<'b>] = request.headers;
    if target.contains('#') {
        return Err(RequestError::BadRequest("fragment in request target"));
    }
    let (authority, path_and_query) =
        split_target(method, target).map_err(RequestError::BadRequest)?;
    let (path, query) = match path_and_query.bytes().position(|b| b == b'?') {
        Some(i) => (&path_and_query[..i], Some(&path_and_query[i + 1..])),
        None => (path_and_query, None),
    };
    if has_dot_segment(path) {
        return Err(RequestError::BadRequest("dot segment in path"));
    }
    if path.contains('\\') {
        return Err(RequestError::BadRequest("backslash in path"));
    }
    let fields = scan_fields(headers, version)?;
    let host = authority.or(fields.host);
    if version == Version::Http11 && fields.host_count != 1 {
        return Err(RequestError::BadRequest(
            "HTTP/1.1 request needs exactly one Host",
        ));
    }
    if fields.host_count > 1 {
        return Err(RequestError::BadRequest("repeated Host"));
    }
    let keep_alive = match version {
        Version::Http11 => !fields.connection_close,
        Version::Http10 => fields.connection_keep_alive && !fields.connection_close,
    };
    Ok(Parsed::Complete(RequestHead {
        len,
        method,
        version,
        path,
        query,
        host,
        headers,
        body: fields.body,
        keep_alive,
        expect_continue: fields.expect_continue,
        connection_options: fields.connection_options,
        connection_upgrade: fields.connection_upgrade,
    }))
}

/// The head did not end within the limit: 414 when the request line itself is
/// what overflowed, 431 otherwise.
fn oversize(buf: &[u8], limits: &HeadLimits) -> RequestError {
    match buf.iter().position(|&b| b == b'\n') {
        None => RequestError::UriTooLong,
        Some(_) if request_line_too_long(buf, limits) => RequestError::UriTooLong,
        Some(_) => RequestError::HeadTooLarge,
    }
}

/// True once the request line (so far) holds a target longer than the limit.
fn request_line_too_long(buf: &[u8], limits: &HeadLimits) -> bool {
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = &buf[..line_end];
    let Some(first_space) = line.iter().position(|&b| b == b' ') else {
        return false;
    };
    let rest = &line[first_space + 1..];
    let target_len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    target_len > limits.max_uri_bytes
}

/// httparse refused the version: 505 for a well-formed other version
/// (`HTTP/2.0`, `HTTP/3`), 400 for garbage.
fn version_error(buf: &[u8]) -> RequestError {
    let line_end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    let line = &buf[..line_end];
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or(b"");
    match version.strip_prefix(b"HTTP/") {
        Some([major, rest @ ..])
            if major.is_ascii_digit() && rest.iter().all(|&b| b.is_ascii_digit() || b == b'.') =>
        {
            if *major == b'1' {
                RequestError::BadRequest("invalid HTTP version")
            } else {
                RequestError::VersionNotSupported
            }
        }
        _ if is_http09(buf) => RequestError::VersionNotSupported,
        _ => RequestError::BadRequest("invalid HTTP version"),
    }
}

/// An HTTP/0.9 simple request: `GET /path` and a line end, no version.
fn is_http09(buf: &[u8]) -> bool {
    let line_end = match buf.iter().position(|&b| b == b'\n') {
        Some(i) => i,
        None => return false,
    };
    let line = buf[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..line_end]);
    let mut parts = line.split(|&b| b == b' ');
    matches!((parts.next(), parts.next(), parts.next()), (Some(m), Some(t), None) if is_token(m) && t.first() == Some(&b'/'))
}

/// What the header fields say about framing, connection and host.
struct FieldScan<'b> {
    body: BodyFraming,
    host: Option<&'b str>,
    host_count: usize,
    connection_close: bool,
    connection_keep_alive: bool,
    connection_options: bool,
    connection_upgrade: bool,
    expect_continue: bool,
}

fn scan_fields<'b>(
    headers: &[httparse::Header<'b>],
    version: Version,
) -> Result<FieldScan<'b>, RequestError> {
    let mut scan = FieldScan {
        body: BodyFraming::None,
        host: None,
        host_count: 0,
        connection_close: false,
        connection_keep_alive: false,
        connection_options: false,
        connection_upgrade: false,
        expect_continue: false,
    };
    let mut content_length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut codings = TransferCodings::default();
    let mut connection_tokens = 0;
    for header in headers {
        let name = header.name;
        let value = header.value;
        // httparse has refused any value byte outside HTAB / SP / VCHAR /
        // obs-text already (default configuration: nothing skipped, no
        // obs-fold). The names below are told apart by length first.
        if !matches!(name.len(), 4 | 6 | 10 | 14 | 17) {
            continue;
        }
        if is_named(name, "host") {
            scan.host_count += 1;
            if !value.is_empty() && !is_valid_authority(value) {
                return Err(RequestError::BadRequest("invalid Host"));
            }
            scan.host = std::str::from_utf8(value).ok().filter(|h| !h.is_empty());
        } else if is_named(name, "content-length") {
            if content_length.is_some() {
                return Err(RequestError::BadRequest("repeated Content-Length"));
            }
            content_length = Some(
                parse_content_length(value)
                    .ok_or(RequestError::BadRequest("malformed Content-Length"))?,
            );
        } else if is_named(name, "transfer-encoding") {
            if version == Version::Http10 {
                return Err(RequestError::BadRequest("Transfer-Encoding in HTTP/1.0"));
            }
            transfer_encoding = true;
            codings.add(value)?;
        } else if is_named(name, "connection") {
            for token in list_elements(value) {
                connection_tokens += 1;
                if connection_tokens > MAX_CONNECTION_TOKENS {
                    return Err(RequestError::BadRequest("too many Connection options"));
                }
                if token.eq_ignore_ascii_case(b"close") {
                    scan.connection_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    scan.connection_keep_alive = true;
                } else if !is_token(token) {
                    return Err(RequestError::BadRequest("malformed Connection"));
                } else {
                    scan.connection_options = true;
                    scan.connection_upgrade |= token.eq_ignore_ascii_case(b"upgrade");
                }
            }
        } else if is_named(name, "expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                scan.expect_continue = version == Version::Http11;
            } else {
                return Err(RequestError::ExpectationFailed);
            }
        }
    }
    scan.body = match (content_length, transfer_encoding) {
        (Some(_), true) => {
            return Err(RequestError::BadRequest(
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (_, true) => codings.framing()?,
        (Some(0), false) | (None, false) => BodyFraming::None,
        (Some(n), false) => BodyFraming::Length(n),
    };
    Ok(scan)
}

/// The transfer codings named across every `Transfer-Encoding` field.
#[derive(Default)]
struct TransferCodings {
    count: usize,
    chunked_at: Option<usize>,
    chunked_seen: usize,
    unknown: bool,
    other_known: bool,
}

impl TransferCodings {
    fn add(&mut self, value: &[u8]) -> Result<(), RequestError> {
        let mut any = false;
        for coding in value.split(|&b| b == b',') {
            let coding = super::fields::trim_ows(coding);
            if !is_token(coding) {
                return Err(RequestError::BadRequest("malformed Transfer-Encoding"));
            }
            any = true;
            if coding.eq_ignore_ascii_case(b"chunked") {
                self.chunked_at = Some(self.count);
                self.chunked_seen += 1;
            } else if ["gzip", "x-gzip", "deflate", "compress", "x-compress"]
                .iter()
                .any(|known| coding.eq_ignore_ascii_case(known.as_bytes()))
            {
                self.other_known = true;
            } else {
                self.unknown = true;
            }
            self.count += 1;
        }
        if !any {
            return Err(RequestError::BadRequest("empty Transfer-Encoding"));
        }
        Ok(())
    }

    /// Only a single, final `chunked` is accepted (RFC 9112 §6.3). A `chunked`
    /// that is not final is a 400 whatever follows it (§6.3 says MUST), so
    /// that check comes before the 501 for a coding the gateway does not know.
    fn framing(&self) -> Result<BodyFraming, RequestError> {
        let chunked_final = self.chunked_seen == 1 && self.chunked_at == Some(self.count - 1);
        if self.chunked_seen > 0 && !chunked_final {
            return Err(RequestError::BadRequest(
                "chunked is not the single final transfer coding",
            ));
        }
        if self.unknown {
            return Err(RequestError::UnsupportedCoding);
        }
        if !chunked_final {
            return Err(RequestError::BadRequest(
                "chunked is not the single final transfer coding",
            ));
        }
        if self.other_known {
            return Err(RequestError::UnsupportedCoding);
        }
        Ok(BodyFraming::Chunked)
    }
}

trait StaticDescription {
    fn description_str_static(&self) -> &'static str;
}

impl StaticDescription for httparse::Error {
    fn description_str_static(&self) -> &'static str {
        match self {
            httparse::Error::HeaderName => "invalid header name",
            httparse::Error::HeaderValue => "invalid header value",
            httparse::Error::NewLine => "invalid line ending",
            httparse::Error::Status => "invalid status",
            httparse::Error::Token => "invalid token",
            httparse::Error::TooManyHeaders => "too many headers",
            httparse::Error::Version => "invalid HTTP version",
        }
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
