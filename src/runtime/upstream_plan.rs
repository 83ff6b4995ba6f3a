//! The upstream half of planning an admitted request: the back end's own
//! credentials, the request head written for it (header transformations,
//! the balancing hash), the response's rendered header values, and what
//! templates and dynamic selectors may read about the request.

use super::plan::Plan;
use crate::http::fields::is_named;
use crate::http::request::RequestHead;
use crate::policy::credentials::Field;
use crate::policy::headers::{RenderedValues, TemplateContext};
use crate::policy::usage::Admitted;
use crate::policy::RequestCtx;
use crate::proxy::exchange::ForwardRequest;
use crate::proxy::rewrite::write_upstream_request;
use crate::route::table::Params;
use crate::runtime::dispatch::Context;
use crate::snapshot::{HttpBackendSpec, Snapshot};
use crate::telemetry::record::RequestId;

/// The back end's own `Authorization` line, if it has credentials: `Err`
/// when none is at hand (502).
pub(super) fn backend_credential<'a>(
    backend: &'a HttpBackendSpec,
    head: &RequestHead<'_, '_>,
) -> Result<Option<Field<'a>>, &'static str> {
    match &backend.credentials {
        None => Ok(None),
        Some(auth) => {
            let sent = head
                .headers
                .iter()
                .any(|h| is_named(h.name, "authorization"));
            auth.field(sent)
        }
    }
}

/// Where an admitted request goes.
pub(super) struct Upstream<'a> {
    pub(super) route: usize,
    pub(super) backend: &'a HttpBackendSpec,
    pub(super) params: &'a Params<'a, 'a>,
    pub(super) forward_keep_alive: bool,
    /// The back end's own `Authorization` field line.
    pub(super) credential: Option<&'a [u8]>,
}

/// Writes the upstream request head (header transformations applied) and
/// renders the response's header values; the exchange runs after.
pub(super) fn plan_forward(
    cx: &Context<'_>,
    upstream: &Upstream<'_>,
    head: &RequestHead<'_, '_>,
    id: &RequestId,
    admitted: RequestCtx<'_, '_, '_>,
    out: &mut Vec<u8>,
) -> Plan {
    let snapshot = cx.snapshot;
    let spec = &snapshot.routes[upstream.route];
    let template_cx = template_context(
        snapshot,
        head,
        upstream.params,
        admitted.claims.as_deref(),
        (&admitted.usage, admitted.deployment),
    );
    let transform = spec
        .policies
        .request_headers
        .as_ref()
        .map(|t| (t, &template_cx));
    let websocket = upstream.backend.websocket && crate::http::websocket::is_upgrade_request(head);
    write_upstream_request(
        out,
        head,
        upstream.backend,
        upstream.params,
        cx.peer,
        id,
        head.body,
        snapshot.deployments[spec.deployment]
            .policies
            .usage
            .as_ref(),
        transform,
        upstream.credential,
        websocket,
    );
    let mut extras = admitted.extras;
    if let Some(t) = &spec.policies.response_headers {
        extras.values = RenderedValues::render(t, &template_cx);
    }
    Plan::Forward {
        route: upstream.route,
        extras,
        request: ForwardRequest {
            body: head.body,
            idempotent: head.is_idempotent(),
            head_request: head.is_head(),
            expect_continue: head.expect_continue,
            client_version: head.version,
            client_keep_alive: upstream.forward_keep_alive,
            max_body: snapshot.max_body_bytes,
            balance_hash: crate::proxy::balance::request_hash(
                upstream.backend,
                admitted.client,
                template_cx.subscriber,
                head.headers,
            ),
            idempotency_key: head.idempotency_key,
            request_id: *id,
            websocket,
        },
    }
}

/// What header templates and dynamic selectors may read about an admitted
/// request: its head, path parameters, claims and usage-plan subscriber (with
/// the deployment's index, to find the plan that admitted it).
pub(super) fn template_context<'a>(
    snapshot: &'a Snapshot,
    head: &'a RequestHead<'a, 'a>,
    params: &'a Params<'a, 'a>,
    claims: Option<&'a crate::policy::auth::Claims>,
    admitted: (&Admitted, usize),
) -> TemplateContext<'a> {
    let usage = &snapshot.usage;
    let (admitted, deployment) = admitted;
    let subscriber = admitted.client.map(|(s, _)| s);
    let plan = subscriber
        .and_then(|s| usage.grant_for(s, deployment))
        .and_then(|grant| usage.plans.get(grant.plan as usize));
    TemplateContext {
        head,
        params,
        claims,
        subscriber: subscriber
            .and_then(|s| usage.subscribers.get(s as usize))
            .map(|s| s.name.as_str()),
        usage_plan: plan.map(|p| p.name.as_str()),
    }
}
