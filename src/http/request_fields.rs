//! What a request's header fields say, in one pass over them (step 3, for
//! [`super::request`]): framing (`Content-Length`, `Transfer-Encoding`, with
//! every ambiguity refused), `Host`, the `Connection` options, `Expect`,
//! and where the fields later steps look for are (`X-Request-Id`,
//! `Idempotency-Key`), so that no later step scans the fields again for them.

use super::authority::is_valid_authority;
use super::fields::{
    is_named, is_token, list_elements, parse_content_length, MAX_CONNECTION_TOKENS,
};
use super::request::RequestError;
use super::{BodyFraming, Version};

/// What the header fields say about framing, connection and host.
pub(super) struct FieldScan<'b> {
    pub(super) body: BodyFraming,
    pub(super) host: Option<&'b [u8]>,
    pub(super) host_count: usize,
    pub(super) connection_close: bool,
    pub(super) connection_keep_alive: bool,
    pub(super) connection_options: bool,
    pub(super) connection_upgrade: bool,
    pub(super) expect_continue: bool,
    /// The value of the first `X-Request-Id` field.
    pub(super) request_id: Option<&'b [u8]>,
    /// An `Idempotency-Key` field is present.
    pub(super) idempotency_key: bool,
}

pub(super) fn scan_fields<'b>(
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
        request_id: None,
        idempotency_key: false,
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
        if !matches!(name.len(), 4 | 6 | 10 | 12 | 14 | 15 | 17) {
            continue;
        }
        if is_named(name, "x-request-id") {
            scan.request_id = scan.request_id.or(Some(value));
        } else if is_named(name, "idempotency-key") {
            scan.idempotency_key = true;
        } else if is_named(name, "host") {
            scan.host_count += 1;
            if !value.is_empty() && !is_valid_authority(value) {
                return Err(RequestError::BadRequest("invalid Host"));
            }
            scan.host = Some(value).filter(|h| !h.is_empty());
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
