//! The vocabulary of one exchange with a back end, shared by its steps
//! ([`super::forward`] and the two body relays): what the client asked for,
//! the worker state the exchange uses, why it stopped, and what was relayed.

use super::rewrite::ClientFraming;
use super::ForwardError;
use crate::http::respond::Persistence;
use crate::http::{BodyFraming, Version};
use crate::proxy::pool::UpstreamPool;
use crate::snapshot::{ClientTimeouts, PoolSettings};
use crate::telemetry::record::RequestId;
use crate::time::deadline::TaskTimer;

/// Flush the output buffer to the peer once it holds this much.
pub(super) const FLUSH_AT: usize = 32 * 1024;

/// What the exchange needs to know about the client's request.
#[derive(Debug, Clone, Copy)]
pub struct ForwardRequest {
    pub body: BodyFraming,
    pub idempotent: bool,
    pub head_request: bool,
    pub expect_continue: bool,
    pub client_version: Version,
    /// The client wants (and may have) another request on this connection.
    pub client_keep_alive: bool,
    pub max_body: u64,
    /// The consistent-hashing key's hash (0 for other balancing).
    pub balance_hash: u64,
    /// The client sent an `Idempotency-Key`.
    pub idempotency_key: bool,
    /// Echoed to the client in the response.
    pub request_id: RequestId,
    /// A WebSocket opening request ([`crate::http::websocket`]), forwarded
    /// with its upgrade.
    pub websocket: bool,
}

/// The worker state an exchange uses.
pub struct Exchange<'a> {
    pub pool: &'a UpstreamPool,
    /// The worker's balancing state and where this back end sits in it.
    pub balance: &'a crate::proxy::balance::WorkerBalance,
    pub slot: crate::proxy::balance::Slot,
    pub pool_settings: PoolSettings,
    pub timeouts: ClientTimeouts,
    /// The client task's timer; bounds every read, write and connect.
    pub timer: &'a TaskTimer,
    /// Response bytes written to the client so far.
    pub written: std::cell::Cell<u64>,
    /// Header changes on the response head (transformations, CORS, security).
    pub response_edits: crate::policy::headers::ResponseEdits<'a>,
    /// The back-end connection of an accepted WebSocket, after its `101`
    /// reached the client: the caller relays it ([`crate::io::tunnel`]); it
    /// never goes back to the pool.
    pub upgraded: std::cell::Cell<Option<crate::io::buffered::BufferedStream>>,
}

impl Exchange<'_> {
    pub(super) fn deadline(&self, limit: std::time::Duration) -> crate::time::deadline::Tick {
        self.timer.deadlines().after(limit)
    }
}

/// Why an exchange stopped.
#[derive(Debug)]
pub(super) enum Failure {
    /// The back end failed (status 502 or 504).
    Upstream(ForwardError),
    /// The client failed or broke a rule while sending its body.
    Client(ForwardError),
    /// Nothing arrived on a reused connection: try once more on a fresh one.
    Retry,
    /// The back end closed or reset the connection before any response byte.
    Unanswered(ForwardError),
    /// The back end answered a status the back end's `retry.statuses` lists;
    /// nothing was relayed.
    RetryStatus,
}

impl Failure {
    pub(super) fn into_error(self, body_pending: bool) -> ForwardError {
        match self {
            Failure::Upstream(mut e) => {
                e.request_unfinished |= body_pending;
                e
            }
            Failure::Client(e) => e,
            Failure::Unanswered(mut e) => {
                e.request_unfinished |= body_pending;
                e
            }
            Failure::Retry => ForwardError::upstream(502, "back end closed the connection"),
            Failure::RetryStatus => {
                ForwardError::upstream(502, "back end answered a retried status")
            }
        }
    }
}

/// A response relayed to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// The client connection stays open.
    pub keep_alive: bool,
    /// The back end's status code.
    pub status: u16,
    /// Bytes written to the client (head and body).
    pub bytes_out: u64,
}

/// What the final response head decided.
pub(super) struct ResponsePlan {
    pub(super) status: u16,
    pub(super) upstream_body: BodyFraming,
    pub(super) client_framing: ClientFraming,
    pub(super) persistence: Persistence,
    pub(super) upstream_close: bool,
}
