//! What a request's head decided, as small owned data that outlives the
//! head's borrow of the read buffer: the plan (answer, or forward to which
//! route) and what the telemetry needs to know.

use crate::http::BodyFraming;
use crate::policy::headers::edits::ResponseExtras;
use crate::proxy::exchange::ForwardRequest;
use crate::telemetry::record::{Decision, RequestId};

/// What to do once the read buffer is free again.
#[derive(Debug)]
pub enum Plan {
    /// `out` holds a complete answer; a request body of `skip_body` follows the
    /// head and must be discarded (or the connection closed).
    Respond {
        status: u16,
        keep_alive: bool,
        skip_body: BodyFraming,
    },
    /// A remote authenticator must be asked first: the connection loop
    /// makes the call, hands the answer over and plans the request again
    /// (`out` holds nothing).
    Authorize(crate::policy::Question),
    /// `out` holds the upstream request head.
    Forward {
        route: usize,
        /// What the response head needs from this request (CORS, header values).
        extras: ResponseExtras,
        request: ForwardRequest,
    },
}

/// What the telemetry needs to know about a request, fixed at its head.
#[derive(Debug, Clone, Copy)]
pub struct RequestMeta {
    pub id: RequestId,
    pub route: Option<usize>,
    /// The decision if the gateway answered itself (forwarded requests decide later).
    pub decision: Decision,
    pub head_len: usize,
    pub body_len: u64,
    /// Forwarded over quota with `on_breach = allow`.
    pub quota_breached: bool,
    /// Forwarded although it broke a rule of a permissive validation.
    pub validation_failed: bool,
    /// The case of the route's dynamic back end that serves the request.
    pub case: Option<u16>,
}

/// A parsed and planned request.
#[derive(Debug)]
pub struct Planned {
    pub plan: Plan,
    pub meta: RequestMeta,
}
