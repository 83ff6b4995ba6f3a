//! Step 6–7 of a request's way: forwarding to an HTTP back end over a pooled
//! keep-alive connection and relaying its response.
//!
//! [`rewrite`] builds heads (`forwarding` the fields the gateway adds to a
//! forwarded request); [`pool`] keeps idle connections per worker
//! (opened by [`crate::io::connect`], checked clean by [`crate::io::socket_handle`]
//! on reuse); [`forward`] runs one exchange in the terms of [`exchange`]: the
//! request body streamed with its framing checked (`request_body`), the
//! response head parsed, the response body streamed (`response_body`),
//! keep-alive decided for both connections. Errors know their side: a [`ForwardError`] says which
//! status the client gets and whether the client connection is still in sync.
//!
//! A back end may have several servers: [`balance`] picks one per try on the
//! worker's own state, `breaker` caps requests in flight, [`health`] ejects
//! failing servers (passive) and [`health_check`] checks them off the
//! workers (active: each check on a thread of its own, [`health_probe`]), [`retry`] decides what may go to another server within
//! a budget, `interim` relays 1xx answers, and `switch` hands an accepted
//! WebSocket's back-end connection over for the relay. See docs/backends.md.

pub mod balance;
mod breaker;
pub mod exchange;
pub mod forward;
mod forwarding;
pub mod health;
pub mod health_check;
pub mod health_probe;
mod interim;
pub mod pool;
mod request_body;
mod response_body;
mod response_head;
pub mod retry;
pub mod rewrite;
pub mod side_call;
mod switch;

/// Which side of the proxy failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Upstream,
}

/// A failed exchange and how the client connection must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardError {
    pub side: Side,
    /// Status to answer with, if nothing of the response reached the client yet.
    pub status: u16,
    /// Why, for the log.
    pub reason: &'static str,
    /// Part of the response already went to the client: the connection must be
    /// closed without writing anything more.
    pub response_started: bool,
    /// The request body was not fully read: the connection cannot carry another request.
    pub request_unfinished: bool,
    /// Seconds for `Retry-After` (0: none): no server could take the request.
    pub retry_after: u32,
}

impl ForwardError {
    pub(crate) fn upstream(status: u16, reason: &'static str) -> Self {
        ForwardError {
            side: Side::Upstream,
            status,
            reason,
            response_started: false,
            request_unfinished: false,
            retry_after: 0,
        }
    }

    pub(crate) fn client(status: u16, reason: &'static str) -> Self {
        ForwardError {
            side: Side::Client,
            status,
            reason,
            response_started: false,
            request_unfinished: true,
            retry_after: 0,
        }
    }

    /// The exchange ended mid-way on `side`; nothing more can be written.
    pub(crate) fn aborted(side: Side, reason: &'static str) -> Self {
        ForwardError {
            side,
            status: 502,
            reason,
            response_started: true,
            request_unfinished: true,
            retry_after: 0,
        }
    }
}
