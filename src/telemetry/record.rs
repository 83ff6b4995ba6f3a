//! What the gateway remembers about one request for its access log and
//! metrics: the request id, the decision that settled the request, and the
//! time it took.
//!
//! Filled in along the request's way (head → route → upstream → response) and
//! read by step 8 (telemetry). Never holds a token or a header value other than
//! the request id.

use crate::http::request::RequestError;
use crate::telemetry::format::{write_millis, LogClock};
use std::cell::Cell;
use std::time::Duration;

/// Longest request id accepted from a client (longer ones are replaced).
pub const MAX_REQUEST_ID: usize = 64;

/// Length of a generated id: 16 hex digits, `-`, 12 hex digits.
const GENERATED_LEN: u8 = 29;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A request id: the client's `X-Request-Id` when well formed, else generated.
#[derive(Clone, Copy)]
pub struct RequestId {
    bytes: [u8; MAX_REQUEST_ID],
    len: u8,
}

impl RequestId {
    /// The client's id, if it is 1–64 bytes of `[A-Za-z0-9._:-]`.
    pub fn from_client(value: &[u8]) -> Option<RequestId> {
        let well_formed = !value.is_empty()
            && value.len() <= MAX_REQUEST_ID
            && value
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        well_formed.then(|| {
            let mut bytes = [0; MAX_REQUEST_ID];
            bytes[..value.len()].copy_from_slice(value);
            RequestId {
                bytes,
                len: value.len() as u8,
            }
        })
    }

    /// A fresh id: the worker's random prefix and its request counter.
    pub fn generate(prefix: u64, counter: u64) -> RequestId {
        let mut id = RequestId::with_prefix(prefix);
        id.set_counter(counter);
        id
    }

    /// `<16 hex digits of prefix>-` followed by a counter of zeros: what
    /// every id a worker generates starts with, written once.
    fn with_prefix(prefix: u64) -> RequestId {
        let mut bytes = [b'0'; MAX_REQUEST_ID];
        for (i, shift) in (0..16).rev().enumerate() {
            bytes[i] = HEX[((prefix >> (shift * 4)) & 0xf) as usize];
        }
        bytes[16] = b'-';
        RequestId {
            bytes,
            len: GENERATED_LEN,
        }
    }

    /// Writes the low 48 bits of `counter` as the id's last 12 hex digits.
    fn set_counter(&mut self, counter: u64) {
        for (i, shift) in (0..12).rev().enumerate() {
            self.bytes[17 + i] = HEX[((counter >> (shift * 4)) & 0xf) as usize];
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Appends `X-Request-Id: <id>\r\n`.
    pub fn write_field(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"X-Request-Id: ");
        out.extend_from_slice(self.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

/// The decision that settled a request, as a stable code operators can search
/// for (in the style of OCI API Gateway's execution log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Answered by a stock back end.
    StockResponse,
    /// Forwarded; the back end answered.
    BackendResponded,
    /// The back end failed (refused, reset, invalid answer).
    BackendError,
    /// The back end did not answer or accept in time.
    BackendTimeout,
    /// The back end ended the response early; the client connection was cut.
    BackendAborted,
    NoRoute,
    /// A dynamic back end has no case (and no default) for the request (404).
    NoBackendMatch,
    MethodNotAllowed,
    BadRequest,
    HeadTooLarge,
    UriTooLong,
    BodyTooLarge,
    UnsupportedCoding,
    /// `CONNECT`: the gateway opens no tunnels (501).
    MethodNotImplemented,
    VersionNotSupported,
    ExpectationFailed,
    ClientTimeout,
    /// The client went away before the answer was complete.
    ClientAborted,
    /// The client's address is not allowed on the deployment.
    NetworkDenied,
    /// The deployment needs a client token and the request has none.
    UsageTokenMissing,
    /// The client token belongs to no subscriber.
    UsageTokenUnknown,
    /// The subscriber's plans do not entitle this deployment.
    UsageNotEntitled,
    /// Over the subscriber entitlement's rate limit.
    EntitlementRateLimited,
    /// Over the subscriber entitlement's quota (`on_breach = reject`).
    QuotaExceeded,
    /// Over the deployment's rate limit.
    DeploymentRateLimited,
    /// Forwarded although over quota (`on_breach = allow`); the back end answered.
    QuotaBreachedAllowed,
    /// A CORS preflight answered by the gateway.
    CorsPreflight,
    /// No token where one is needed (401).
    TokenMissing,
    /// A token that does not verify (401).
    TokenInvalid,
    /// Authenticated, but without an allowed scope (403).
    ScopeDenied,
    /// An OPTIONS or TRACE with `Max-Forwards: 0`, answered by the gateway.
    MaxForwardsAnswered,
    /// Broke a validation rule of an enforcing route (400).
    ValidationFailed,
    /// Broke a validation rule of a permissive route; forwarded, the back end answered.
    ValidationFailedAllowed,
    /// The back end's credentials (an OAuth2 token) are not at hand: 502.
    BackendCredentialsUnavailable,
    /// A remote authenticator (HTTP authorizer) refused the caller (401).
    AuthorizerRefused,
    /// A remote authenticator failed or was too slow: refused (503 or 401).
    AuthorizerUnavailable,
}

impl Decision {
    pub fn code(self) -> &'static str {
        match self {
            Decision::StockResponse => "stockResponse.served",
            Decision::BackendResponded => "httpBackend.requestForwarded",
            Decision::BackendError => "httpBackend.requestError",
            Decision::BackendTimeout => "httpBackend.requestTimeout",
            Decision::BackendAborted => "httpBackend.responseAborted",
            Decision::NoRoute => "routing.noRoute",
            Decision::NoBackendMatch => "routing.noBackendMatch",
            Decision::MethodNotAllowed => "routing.methodNotAllowed",
            Decision::BadRequest => "request.malformed",
            Decision::HeadTooLarge => "request.headTooLarge",
            Decision::UriTooLong => "request.uriTooLong",
            Decision::BodyTooLarge => "request.bodyTooLarge",
            Decision::UnsupportedCoding => "request.unsupportedTransferCoding",
            Decision::MethodNotImplemented => "request.methodNotImplemented",
            Decision::VersionNotSupported => "request.unsupportedVersion",
            Decision::ExpectationFailed => "request.expectationFailed",
            Decision::ClientTimeout => "request.clientTimeout",
            Decision::ClientAborted => "request.clientAborted",
            Decision::NetworkDenied => "network.requestDenied",
            // One code for the three, as OCI's execution log; `reason` tells them apart.
            Decision::UsageTokenMissing
            | Decision::UsageTokenUnknown
            | Decision::UsageNotEntitled => "usagePlans.requestRejected",
            Decision::EntitlementRateLimited => "usagePlans.rateLimitExceeded",
            Decision::QuotaExceeded => "usagePlans.quotaExceeded",
            Decision::DeploymentRateLimited => "rateLimiting.requestDenied",
            Decision::QuotaBreachedAllowed => "usagePlans.requestBreachedButAllowed",
            Decision::CorsPreflight => "cors.preflightAnswered",
            Decision::TokenMissing => "authentication.tokenMissing",
            Decision::TokenInvalid => "authentication.tokenInvalid",
            Decision::ScopeDenied => "authorization.scopeDenied",
            Decision::MaxForwardsAnswered => "request.maxForwardsAnswered",
            Decision::ValidationFailed => "validation.requestRejected",
            Decision::ValidationFailedAllowed => "validation.requestFailedButAllowed",
            Decision::BackendCredentialsUnavailable => "httpBackend.credentialsUnavailable",
            Decision::AuthorizerRefused => "authentication.authorizerRefused",
            Decision::AuthorizerUnavailable => "authentication.authorizerUnavailable",
        }
    }

    /// What tells decisions that share a code apart (access log `reason`).
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Decision::UsageTokenMissing => Some("tokenMissing"),
            Decision::UsageTokenUnknown => Some("tokenUnknown"),
            Decision::UsageNotEntitled => Some("notEntitled"),
            _ => None,
        }
    }

    /// The decision for a request head the gateway refused.
    pub fn for_request_error(error: RequestError) -> Decision {
        match error {
            RequestError::MethodNotImplemented => Decision::MethodNotImplemented,
            other => Decision::for_request_status(other.status()),
        }
    }

    /// The decision for a status the gateway produced while reading a request.
    pub fn for_request_status(status: u16) -> Decision {
        match status {
            408 => Decision::ClientTimeout,
            413 => Decision::BodyTooLarge,
            414 => Decision::UriTooLong,
            417 => Decision::ExpectationFailed,
            431 => Decision::HeadTooLarge,
            501 => Decision::UnsupportedCoding,
            505 => Decision::VersionNotSupported,
            _ => Decision::BadRequest,
        }
    }

    /// The decision for a failed exchange's status.
    pub fn for_exchange_status(status: u16) -> Decision {
        match status {
            504 => Decision::BackendTimeout,
            408 => Decision::ClientTimeout,
            413 => Decision::BodyTooLarge,
            400 => Decision::BadRequest,
            _ => Decision::BackendError,
        }
    }
}

/// Numbers about one finished request.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    pub status: u16,
    pub decision: Decision,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub total: Duration,
    /// Time spent in the exchange with the back end, if there was one.
    pub backend: Option<Duration>,
}

/// Appends one access log JSON object: time, the head's fields, the outcome.
pub fn write_access_line(
    line: &mut Vec<u8>,
    clock: &LogClock,
    head_fields: &[u8],
    outcome: &Outcome,
) {
    line.extend_from_slice(b"{\"time\":\"");
    clock.write(line, std::time::SystemTime::now());
    line.extend_from_slice(b"\",");
    line.extend_from_slice(head_fields);
    let mut n = itoa::Buffer::new();
    line.extend_from_slice(b",\"status\":");
    line.extend_from_slice(n.format(outcome.status).as_bytes());
    line.extend_from_slice(b",\"bytes_in\":");
    line.extend_from_slice(n.format(outcome.bytes_in).as_bytes());
    line.extend_from_slice(b",\"bytes_out\":");
    line.extend_from_slice(n.format(outcome.bytes_out).as_bytes());
    line.extend_from_slice(b",\"duration_ms\":");
    write_millis(line, outcome.total);
    line.extend_from_slice(b",\"backend_ms\":");
    match outcome.backend {
        Some(d) => write_millis(line, d),
        None => line.extend_from_slice(b"null"),
    }
    line.extend_from_slice(b",\"decision\":\"");
    line.extend_from_slice(outcome.decision.code().as_bytes());
    line.push(b'"');
    if let Some(reason) = outcome.decision.reason() {
        line.extend_from_slice(b",\"reason\":\"");
        line.extend_from_slice(reason.as_bytes());
        line.push(b'"');
    }
    line.push(b'}');
}

/// A worker's source of request ids: a random prefix and a counter. The
/// prefix's hex form is written once; each id only writes its counter.
pub struct RequestIds {
    template: RequestId,
    counter: Cell<u64>,
}

impl RequestIds {
    pub fn new(prefix: u64) -> Self {
        RequestIds {
            template: RequestId::with_prefix(prefix),
            counter: Cell::new(0),
        }
    }

    /// The next generated id.
    pub fn next_id(&self) -> RequestId {
        let n = self.counter.get().wrapping_add(1);
        self.counter.set(n);
        let mut id = self.template;
        id.set_counter(n);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A well-formed client id is kept; spaces, quotes and over-long ids are not.
    #[test]
    fn client_ids_validated() {
        let long = [b'a'; 65];
        assert_eq!(
            [&b"abc-123"[..], b"a b", b"x\"y", &long[..], b""]
                .map(|v| RequestId::from_client(v).is_some()),
            [true, false, false, false, false]
        );
    }

    // A generated id is the prefix and counter in hex.
    #[test]
    fn generated_id_format() {
        assert_eq!(
            RequestId::generate(0xabc, 0x10).as_bytes(),
            b"0000000000000abc-000000000010"
        );
    }

    // A worker's ids carry its prefix and count up from 1.
    #[test]
    fn worker_ids_count_up() {
        let ids = RequestIds::new(0xfedc_ba98_7654_3210);
        let first = ids.next_id();
        let second = ids.next_id();
        assert_eq!(
            (first.as_bytes(), second.as_bytes()),
            (
                &b"fedcba9876543210-000000000001"[..],
                &b"fedcba9876543210-000000000002"[..]
            )
        );
    }
}
