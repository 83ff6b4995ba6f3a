//! Parsing and validating a client's request head.
//!
//! Step 3 of a request's way: the connection hands in the unconsumed bytes of
//! its read buffer; this returns `Partial` (read more), a validated
//! [`RequestHead`] borrowing the buffer, or a [`RequestError`] that decides the
//! status code. Framing is strict, because a gateway that reads a body length
//! differently from its back end is a request-smuggling hole: every ambiguity is
//! rejected here, before a byte is forwarded.

use super::authority::split_target;
use super::fields::is_token;
use super::path::has_dot_segment;
use super::request_fields::scan_fields;
use super::{BodyFraming, Version};
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
    /// Checked as an authority (ASCII only; `Host` values are left as bytes:
    /// nothing on the request path needs them as text).
    pub host: Option<&'b [u8]>,
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
    /// The value of the first `X-Request-Id` field, unchecked.
    pub request_id: Option<&'b [u8]>,
    /// An `Idempotency-Key` field is present (retries may then be allowed).
    pub idempotency_key: bool,
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
    let host = authority.map(str::as_bytes).or(fields.host);
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
        request_id: fields.request_id,
        idempotency_key: fields.idempotency_key,
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
