//! Steps 3–5 of a request's way, synchronously, while the head borrows the
//! read buffer: parse the head, route it, run the policies, and write either
//! the gateway's own answer or the upstream request head into the output
//! buffer. What must outlive the borrow comes back as a [`Planned`] (small,
//! `Copy` data), so the connection can resume I/O.

use super::answer::Answering;
pub use super::plan::{Plan, Planned, RequestMeta};
use super::request_log::write_log_fields;
use super::upstream_plan::{backend_credential, plan_forward, template_context, Upstream};
use crate::config::validation::ValidationMode;
use crate::http::max_forwards;
use crate::http::path::routing_path;
use crate::http::request::{header_storage, parse_request, Parsed, RequestError, RequestHead};
use crate::http::BodyFraming;
use crate::net::peer::{client_address, Peer};
use crate::policy::cors::Preflight;
use crate::policy::credentials::Field;
use crate::policy::usage::{Admitted, LocalShares, RequestTally};
use crate::policy::validation::Verdict;
use crate::policy::{chain, Answer, RequestCtx, Step};
use crate::snapshot::{BackendSpec, MethodDispatch, PathEntry, RouteSpec, Snapshot};
use crate::telemetry::record::{Decision, RequestId, RequestIds};
use std::net::IpAddr;
use tracing::debug;

/// Everything a plan depends on besides the bytes.
pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    pub peer: &'a Peer,
    pub listener: usize,
    pub draining: bool,
    pub ids: &'a RequestIds,
    /// The worker's leases on shared rate limits.
    pub limits: &'a LocalShares,
    /// The worker's count of requests per subscriber.
    pub tally: &'a RequestTally,
}

/// Parses the pending bytes; when a head is complete, routes it and writes the
/// answer or the upstream head into `out`, and, if `log` is given, the
/// request's access-log fields. `Ok(None)`: the head is not complete yet.
pub fn plan_request(
    cx: &Context<'_>,
    pending: &[u8],
    out: &mut Vec<u8>,
    log: Option<&mut Vec<u8>>,
) -> Result<Option<Planned>, RequestError> {
    let mut storage = header_storage();
    let head = match parse_request(pending, &cx.snapshot.head_limits, &mut storage)? {
        Parsed::Partial => return Ok(None),
        Parsed::Complete(head) => head,
    };
    let id = head
        .request_id
        .and_then(RequestId::from_client)
        .unwrap_or_else(|| cx.ids.next_id());
    let client = match cx.snapshot.listeners.get(cx.listener) {
        Some(listener) => {
            client_address(cx.peer.addr.ip(), &listener.trusted_proxies, head.headers)
        }
        None => cx.peer.addr.ip(),
    };
    let body = &pending[head.len..];
    let Some(routed) = route_request(cx, &head, &id, client, body, out) else {
        // A route that validates the body waits for all of it.
        return Ok(None);
    };
    if let Some(log) = log {
        write_log_fields(
            log,
            cx.snapshot,
            cx.peer,
            &head,
            &id,
            client,
            routed.route,
            routed.case,
            &routed.usage,
        );
    }
    let body_len = match head.body {
        BodyFraming::Length(n) => n,
        _ => 0,
    };
    Ok(Some(Planned {
        plan: routed.plan,
        meta: RequestMeta {
            id,
            route: routed.route,
            decision: routed.decision,
            head_len: head.len,
            body_len,
            quota_breached: routed.usage.quota_breached,
            validation_failed: routed.validation_failed,
            case: routed.case,
        },
    }))
}

/// What routing, the policies and the back end's step decided.
struct Routed {
    plan: Plan,
    /// None for 404 and 405.
    route: Option<usize>,
    /// The case of a dynamic back end that serves the request.
    case: Option<u16>,
    /// Broke a validation rule of a permissive route.
    validation_failed: bool,
    decision: Decision,
    /// The subscriber's client, if a usage plan admitted the request.
    usage: Admitted,
}

impl Routed {
    fn unrouted(plan: Plan, decision: Decision) -> Self {
        Routed {
            plan,
            route: None,
            case: None,
            validation_failed: false,
            decision,
            usage: Admitted::default(),
        }
    }
}

/// Routes the head, runs the policy chain and writes the answer or the
/// upstream head. `body` is what the read buffer holds after the head;
/// `None`: the route validates bodies and this one is not all here yet.
fn route_request(
    cx: &Context<'_>,
    head: &RequestHead<'_, '_>,
    id: &RequestId,
    client: IpAddr,
    body: &[u8],
    out: &mut Vec<u8>,
) -> Option<Routed> {
    let body_available = body.len();
    let snapshot = cx.snapshot;
    let forward_keep_alive = head.keep_alive && !cx.draining;
    let security = snapshot
        .listeners
        .get(cx.listener)
        .map_or(&[][..], |l| &l.security.fields[..]);
    let answering = Answering::new(head, id, security, forward_keep_alive, body_available);
    // Routing sees `/%61dmin` and `//admin` as `/admin`, so a spelling
    // cannot steer a request around a route and its policies.
    let decoded = routing_path(head.path);
    let route_path = decoded.as_deref().unwrap_or(head.path);
    let Some(found) = snapshot
        .tables
        .get(cx.listener)
        .and_then(|t| t.lookup(route_path))
    else {
        return Some(Routed::unrouted(
            answering.error(out, 404, b""),
            Decision::NoRoute,
        ));
    };
    // A CORS preflight goes to the route of the method it asks about.
    let preflight = crate::policy::cors::preflight(head)
        .and_then(|p| preflight_route(found.value, &snapshot.routes, &p).map(|route| (p, route)));
    let dispatched = match &preflight {
        Some((_, route)) => MethodDispatch::Route(*route),
        None => found.value.dispatch(&snapshot.routes, head.method),
    };
    let MethodDispatch::Route(route) = dispatched else {
        // Rare: the Allow value is built on the heap.
        let allow = format!("Allow: {}\r\n", found.value.allow);
        let plan = answering.error(out, 405, allow.as_bytes());
        return Some(Routed::unrouted(plan, Decision::MethodNotAllowed));
    };
    let spec = &snapshot.routes[route];
    let validation = spec.policies.validation.as_ref();
    if preflight.is_none() && validation.is_some_and(|v| v.waits_for_body(head, body_available)) {
        // Before any policy runs, so that nothing is counted twice.
        return None;
    }
    let deployment = &snapshot.deployments[spec.deployment];
    let mut policy_cx = RequestCtx::new(head, client, spec.deployment, &deployment.name);
    policy_cx.tls_subject = cx
        .peer
        .tls
        .as_ref()
        .and_then(|t| t.client_subject.as_deref());
    let step = chain::run(
        &mut policy_cx,
        &deployment.policies,
        &spec.policies,
        preflight.as_ref().map(|(p, _)| p),
        &snapshot.usage,
        cx.limits,
        cx.tally,
    );
    let routed = |plan, decision, usage| Routed {
        plan,
        route: Some(route),
        case: None,
        validation_failed: false,
        decision,
        usage,
    };
    let no_usage = Admitted::default();
    match step {
        Step::Continue => {}
        Step::Reject(refusal) if refusal.silent => {
            let plan = answering.silent_close(refusal.status);
            return Some(routed(plan, refusal.decision, no_usage));
        }
        Step::Reject(refusal) => {
            let plan = answering.error(out, refusal.status, &refusal.fields);
            return Some(routed(plan, refusal.decision, no_usage));
        }
        Step::Await(question) => {
            return Some(routed(
                Plan::Authorize(question),
                Decision::BackendResponded,
                no_usage,
            ));
        }
        Step::Answer(Answer::Preflight) => {
            let plan = match (&spec.policies.cors, &preflight) {
                (Some(policy), Some((preflight, _))) => answering.preflight(out, policy, preflight),
                _ => answering.error(out, 500, b""),
            };
            return Some(routed(plan, Decision::CorsPreflight, no_usage));
        }
    }
    let mut validation_failed = false;
    if let Some(validation) = validation {
        if let Verdict::Failed { status, failures } = validation.check(head, body) {
            debug!(request_id = %String::from_utf8_lossy(id.as_bytes()), ?failures, "validation failed");
            if validation.mode == ValidationMode::Permissive {
                validation_failed = true;
            } else {
                let cors = &policy_cx.extras.cors_fields;
                let plan = answering.problem(out, status, &failures, cors);
                let decision = match status {
                    413 => Decision::BodyTooLarge,
                    417 => Decision::ExpectationFailed,
                    _ => Decision::ValidationFailed,
                };
                return Some(routed(plan, decision, policy_cx.usage));
            }
        }
    }
    // A dynamic back end picks its case from the request (and what the policies learned).
    let (backend, case) = match &spec.backend {
        BackendSpec::Dynamic(dynamic) => {
            let template_cx = template_context(
                snapshot,
                head,
                &found.params,
                policy_cx.claims.as_deref(),
                (&policy_cx.usage, policy_cx.deployment),
            );
            let key = template_cx.value(&dynamic.selector);
            match dynamic.cases.choose(key.as_deref()) {
                Some(case) => (&dynamic.backends[case as usize], Some(case)),
                None => {
                    let plan = answering.error(out, 404, &policy_cx.extras.cors_fields);
                    return Some(routed(plan, Decision::NoBackendMatch, policy_cx.usage));
                }
            }
        }
        other => (other, None),
    };
    let routed = |plan, decision, usage| Routed {
        plan,
        route: Some(route),
        case,
        validation_failed,
        decision,
        usage,
    };
    if let (BackendSpec::Http(_), Some(0)) = (backend, max_forwards::remaining(head)) {
        // RFC 9110 §7.6.2: no forwards left, so the gateway is the final recipient.
        let cors = &policy_cx.extras.cors_fields;
        let plan = if head.method == "TRACE" {
            let hidden = |name: &str| hidden_in_trace(deployment, name);
            answering.trace(out, head, hidden, cors)
        } else {
            answering.options(out, &found.value.allow, cors)
        };
        return Some(routed(plan, Decision::MaxForwardsAnswered, policy_cx.usage));
    }
    let usage = policy_cx.usage;
    let (plan, decision) = match backend {
        BackendSpec::Stock(stock) => (
            answering.stock(out, stock, &policy_cx.extras.cors_fields),
            Decision::StockResponse,
        ),
        BackendSpec::Http(_) if exceeds_body_limit(head, snapshot) => {
            (answering.error_then_close(out, 413), Decision::BodyTooLarge)
        }
        BackendSpec::Http(backend) => match backend_credential(backend, head) {
            Err(reason) => {
                tracing::debug!(reason, "no back-end credentials at hand");
                let plan = answering.error(out, 502, &policy_cx.extras.cors_fields);
                (plan, Decision::BackendCredentialsUnavailable)
            }
            Ok(credential) => {
                let upstream = Upstream {
                    route,
                    backend,
                    params: &found.params,
                    forward_keep_alive,
                    credential: credential.as_ref().map(Field::bytes),
                };
                let plan = plan_forward(cx, &upstream, head, id, policy_cx, out);
                (plan, Decision::BackendResponded)
            }
        },
        // Cases are never dynamic themselves (the compiler refuses it).
        BackendSpec::Dynamic(_) => (answering.error(out, 500, b""), Decision::BackendError),
    };
    Some(routed(plan, decision, usage))
}

/// A declared body over `max_body_bytes` is refused before anything is sent.
fn exceeds_body_limit(head: &RequestHead<'_, '_>, snapshot: &Snapshot) -> bool {
    matches!(head.body, BodyFraming::Length(n) if n > snapshot.max_body_bytes)
}

/// The route a CORS preflight on this path answers for: the route the
/// requested method leads to, if it has a CORS policy.
fn preflight_route(
    entry: &PathEntry,
    routes: &[RouteSpec],
    preflight: &Preflight<'_>,
) -> Option<usize> {
    let method = std::str::from_utf8(preflight.method).ok()?;
    match entry.dispatch(routes, method) {
        MethodDispatch::Route(r) if routes[r].policies.cors.is_some() => Some(r),
        _ => None,
    }
}

/// Fields a TRACE echo leaves out: credentials, and wherever the deployment
/// reads a JWT or a client token from.
fn hidden_in_trace(deployment: &crate::snapshot::DeploymentSpec, name: &str) -> bool {
    use crate::policy::{auth, usage};
    let policies = &deployment.policies;
    let jwt_header = policies.authentication.as_ref().is_some_and(|a| {
        matches!(&a.location, auth::TokenLocation::Header { name: h, .. } if h.eq_ignore_ascii_case(name))
    });
    let token_header = policies.usage.as_ref().is_some_and(|u| {
        u.locations
            .iter()
            .any(|l| matches!(l, usage::TokenLocation::Header(h) if h.eq_ignore_ascii_case(name)))
    });
    max_forwards::is_credential_field(name) || jwt_header || token_header
}

/// The subscriber fields of a request without a client token.
pub const NO_SUBSCRIBER: &[u8] = b",\"subscriber\":null,\"client_name\":null";
