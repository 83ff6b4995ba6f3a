//! HTTP/1.1 wire format: request heads from clients, response heads from back
//! ends, body framing, chunked coding and the gateway's own canned answers.
//!
//! Everything here is pure: byte slices in, decisions and bytes out. No I/O, no
//! config lookups, no routing; [`crate::runtime::conn`] and [`crate::proxy`] drive it.

pub mod authority;
pub mod chunked;
pub mod date;
pub mod fields;
pub mod max_forwards;
pub mod path;
pub mod query;
pub mod request;
mod request_fields;
pub mod respond;
pub mod response;
pub mod status;
pub mod websocket;

/// HTTP version of a message on the wire (only 1.0 and 1.1 are spoken).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// How the length of a message body is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the connection closes (responses only).
    UntilClose,
}
