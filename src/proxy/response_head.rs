//! The back end's response head, read synchronously: parsed into header
//! slots that live only in [`take_head`]'s stack frame (4 KiB of them: held
//! across an `await` they would be part of the exchange's future, which is
//! moved into place once per request), and turned into the client's head.

use super::exchange::{Exchange, Failure, ForwardRequest, ResponsePlan};
use super::interim;
use super::response_body::client_framing;
use super::rewrite::{write_client_response, write_switching_response, ClientFraming};
use super::ForwardError;
use crate::http::respond::Persistence;
use crate::http::response::{parse_response, response_header_storage, ParsedResponse};
use crate::io::buffered::BufferedStream;
use crate::snapshot::HttpBackendSpec;

/// Response heads larger than this are refused (502).
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// What the bytes read from the back end so far come to.
pub(super) enum HeadStep {
    /// Not a whole head yet: read more.
    Partial,
    /// An interim (1xx) head, consumed; what the client gets of it, if anything.
    Interim(Option<Vec<u8>>),
    /// An accepted WebSocket switch: its head is in `out`, consumed.
    Switch,
    /// The final head: its client head is in `out`, consumed.
    Final(ResponsePlan),
    Failed(Failure),
}

/// Parses the pending response head and, for a final or switching one,
/// writes the client's head into `out` and consumes the back end's.
pub(super) fn take_head(
    ex: &Exchange<'_>,
    upstream: &mut BufferedStream,
    backend: &HttpBackendSpec,
    req: &ForwardRequest,
    retry_status: bool,
    out: &mut Vec<u8>,
) -> HeadStep {
    let invalid = |why| HeadStep::Failed(Failure::Upstream(ForwardError::upstream(502, why)));
    let mut headers = response_header_storage();
    let (len, step) = match parse_response(upstream.pending(), req.head_request, &mut headers) {
        Err(_) => return invalid("invalid response head"),
        Ok(ParsedResponse::Interim(n)) => {
            let relayed = interim::client_interim(&upstream.pending()[..n], req.client_version);
            (n, HeadStep::Interim(relayed))
        }
        Ok(ParsedResponse::Partial) if upstream.pending().len() >= MAX_RESPONSE_HEAD => {
            return invalid("response head too large")
        }
        Ok(ParsedResponse::Partial) => return HeadStep::Partial,
        Ok(ParsedResponse::Final(head)) if head.status == 101 => {
            if !(req.websocket && crate::http::websocket::is_accepted(&head)) {
                return invalid("unrequested protocol switch");
            }
            out.clear();
            write_switching_response(out, &head, &req.request_id, &ex.response_edits);
            (head.len, HeadStep::Switch)
        }
        Ok(ParsedResponse::Final(head))
            if retry_status && backend.retry.statuses.contains(&head.status) =>
        {
            return HeadStep::Failed(Failure::RetryStatus)
        }
        Ok(ParsedResponse::Final(head)) => {
            let client_framing = client_framing(head.body, req.client_version);
            let keep_alive = req.client_keep_alive && client_framing != ClientFraming::UntilClose;
            let persistence = Persistence::for_client(req.client_version, keep_alive);
            out.clear();
            write_client_response(
                out,
                &head,
                client_framing,
                persistence,
                &req.request_id,
                &ex.response_edits,
            );
            let plan = ResponsePlan {
                status: head.status,
                upstream_body: head.body,
                client_framing,
                persistence,
                upstream_close: head.close,
            };
            (head.len, HeadStep::Final(plan))
        }
    };
    upstream.consume(len);
    step
}
