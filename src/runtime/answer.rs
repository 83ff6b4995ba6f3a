//! The gateway's own answers to a request (404, 405, refusals, preflights,
//! stock back ends, 413, OPTIONS and TRACE at `Max-Forwards: 0`): one place that decides whether the connection is
//! kept (only if the request body, if any, is already here to be skipped) and
//! adds the request id and the listener's security headers.

use super::plan::Plan;
use crate::http::date::write_date_field;
use crate::http::max_forwards;
use crate::http::request::RequestHead;
use crate::http::respond::{write_content_length, write_error, write_status_line, Persistence};
use crate::http::BodyFraming;
use crate::policy::cors::{write_preflight_answer, CorsPolicy, Preflight};
use crate::snapshot::StockSpec;
use crate::telemetry::record::RequestId;

/// How the gateway answers one request itself.
pub struct Answering<'a> {
    body: BodyFraming,
    is_head: bool,
    /// The connection may carry another request after the answer.
    pub keep_alive: bool,
    pub persistence: Persistence,
    id: &'a RequestId,
    /// The listener's security header lines.
    security: &'a [u8],
}

impl<'a> Answering<'a> {
    /// `body_available`: bytes of the body already read after the head;
    /// `forward_keep_alive`: the client asked for and may have another request.
    pub fn new(
        head: &RequestHead<'_, '_>,
        id: &'a RequestId,
        security: &'a [u8],
        forward_keep_alive: bool,
        body_available: usize,
    ) -> Self {
        let skippable = match head.body {
            BodyFraming::None => true,
            BodyFraming::Length(n) => n <= body_available as u64,
            BodyFraming::Chunked | BodyFraming::UntilClose => false,
        };
        let keep_alive = forward_keep_alive && skippable;
        Answering {
            body: head.body,
            is_head: head.is_head(),
            keep_alive,
            persistence: Persistence::for_client(head.version, keep_alive),
            id,
            security,
        }
    }

    fn plan(&self, status: u16, keep_alive: bool) -> Plan {
        Plan::Respond {
            status,
            keep_alive,
            skip_body: self.body,
        }
    }

    /// An error answer (`status`, plain-text body) with `fields` added.
    pub fn error(&self, out: &mut Vec<u8>, status: u16, fields: &[u8]) -> Plan {
        let fields = [IdField::new(self.id).bytes(), fields, self.security].concat();
        write_error(out, status, &fields, self.persistence, self.is_head);
        self.plan(status, self.keep_alive)
    }

    /// An error answer after which the connection closes, whatever else holds.
    pub fn error_then_close(&self, out: &mut Vec<u8>, status: u16) -> Plan {
        write_error(
            out,
            status,
            IdField::new(self.id).bytes(),
            Persistence::Close,
            self.is_head,
        );
        self.plan(status, false)
    }

    /// A validation refusal: `status` with an RFC 9457 problem document
    /// listing the failed rules, and `extra` fields (CORS).
    pub fn problem(
        &self,
        out: &mut Vec<u8>,
        status: u16,
        failures: &[crate::policy::validation::Failure],
        extra: &[u8],
    ) -> Plan {
        let mut body = Vec::with_capacity(256);
        crate::policy::validation::write_problem(&mut body, status, failures);
        write_status_line(out, status, crate::http::status::reason(status));
        write_date_field(out);
        self.id.write_field(out);
        out.extend_from_slice(extra);
        out.extend_from_slice(self.security);
        out.extend_from_slice(b"Content-Type: application/problem+json\r\n");
        write_content_length(out, body.len() as u64);
        self.persistence.write_field(out);
        out.extend_from_slice(b"\r\n");
        if !self.is_head {
            out.extend_from_slice(&body);
        }
        self.plan(status, self.keep_alive)
    }

    /// No answer at all: the connection just closes.
    pub fn silent_close(&self, status: u16) -> Plan {
        self.plan(status, false)
    }

    /// `204 No Content` to a CORS preflight.
    pub fn preflight(
        &self,
        out: &mut Vec<u8>,
        policy: &CorsPolicy,
        preflight: &Preflight<'_>,
    ) -> Plan {
        let fields = [IdField::new(self.id).bytes(), self.security].concat();
        write_preflight_answer(out, policy, preflight, &fields, self.persistence);
        self.plan(204, self.keep_alive)
    }

    /// A stock back end's prebuilt answer, with `extra` fields (CORS).
    pub fn stock(&self, out: &mut Vec<u8>, stock: &StockSpec, extra: &[u8]) -> Plan {
        out.extend_from_slice(&stock.head);
        if !stock.has_date {
            write_date_field(out);
        }
        self.id.write_field(out);
        out.extend_from_slice(extra);
        out.extend_from_slice(self.security);
        self.persistence.write_field(out);
        out.extend_from_slice(b"\r\n");
        if !self.is_head {
            out.extend_from_slice(&stock.body);
        }
        self.plan(stock.status, self.keep_alive)
    }
}

impl Answering<'_> {
    /// `200 OK` with the path's `Allow` to an OPTIONS the gateway answers as
    /// the final recipient (`Max-Forwards: 0`), with `extra` fields (CORS).
    pub fn options(&self, out: &mut Vec<u8>, allow: &str, extra: &[u8]) -> Plan {
        self.own_head(out, extra);
        out.extend_from_slice(b"Allow: ");
        out.extend_from_slice(allow.as_bytes());
        out.extend_from_slice(b"\r\nContent-Length: 0\r\n");
        self.persistence.write_field(out);
        out.extend_from_slice(b"\r\n");
        self.plan(200, self.keep_alive)
    }

    /// `200 OK` with a `message/http` echo of the request to a TRACE the
    /// gateway answers as the final recipient (`Max-Forwards: 0`), without
    /// the fields `hidden` names ([`max_forwards::write_trace_echo`]).
    pub fn trace(
        &self,
        out: &mut Vec<u8>,
        head: &RequestHead<'_, '_>,
        hidden: impl Fn(&str) -> bool,
        extra: &[u8],
    ) -> Plan {
        // Rare (TRACE must be listed on the route): the echo is built on the heap.
        let mut echo = Vec::new();
        max_forwards::write_trace_echo(&mut echo, head, hidden);
        self.own_head(out, extra);
        out.extend_from_slice(b"Content-Type: message/http\r\n");
        write_content_length(out, echo.len() as u64);
        self.persistence.write_field(out);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&echo);
        self.plan(200, self.keep_alive)
    }

    /// A `200 OK` status line, `Date`, the request id, `extra` and the
    /// security headers.
    fn own_head(&self, out: &mut Vec<u8>, extra: &[u8]) {
        write_status_line(out, 200, "OK");
        write_date_field(out);
        self.id.write_field(out);
        out.extend_from_slice(extra);
        out.extend_from_slice(self.security);
    }
}

/// The `X-Request-Id` field line, on the stack, built when an answer is
/// written (a forwarded request never builds it).
struct IdField {
    buf: [u8; 16 + crate::telemetry::record::MAX_REQUEST_ID],
    len: usize,
}

impl IdField {
    fn new(id: &RequestId) -> Self {
        let mut field = IdField {
            buf: [0; 16 + crate::telemetry::record::MAX_REQUEST_ID],
            len: 0,
        };
        for part in [&b"X-Request-Id: "[..], id.as_bytes(), b"\r\n"] {
            field.buf[field.len..field.len + part.len()].copy_from_slice(part);
            field.len += part.len();
        }
        field
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}
