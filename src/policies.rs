//! The caller-facing request phases after routing, in their fixed order:
//! network rules (in [`crate::dispatch`]) → CORS ([`crate::cors`]: a
//! preflight is answered here, the back end never sees it) → authentication
//! ([`crate::auth`]) → route authorization ([`crate::authorization`]) →
//! usage plans and rate limits ([`crate::usage`], called by
//! [`crate::dispatch`] right after [`admit`]) → back end.
//!
//! Pure: reads the head and the compiled route, returns what the request may
//! carry on with (verified claims, response edits) or the refusal to answer.
//! A refusal carries its CORS fields, so a browser can read a 401 or 403.

use crate::auth::{AuthFailure, Claims};
use crate::authorization::Denied;
use crate::cors::Preflight;
use crate::headers::edits::ResponseExtras;
use crate::http::request::RequestHead;
use crate::record::Decision;
use crate::snapshot::{DeploymentSpec, RouteSpec};

/// A request that passed every caller policy.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Verified claims (None: anonymous), for header transformations,
    /// usage plans and logs.
    pub claims: Option<std::rc::Rc<Claims>>,
    /// CORS fields for the response (values rendered later, by the back-end step).
    pub extras: ResponseExtras,
}

/// A refused request: what to answer.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub decision: Decision,
    /// Field lines for the answer (challenge, CORS).
    pub fields: Vec<u8>,
}

/// Runs CORS (actual request), authentication and authorization for a
/// request on `route`; `now` gives the time in seconds when a token must be
/// checked.
pub fn admit(
    head: &RequestHead<'_, '_>,
    route: &RouteSpec,
    deployment: &DeploymentSpec,
    now: impl FnOnce() -> u64,
) -> Result<Admitted, Refusal> {
    let mut extras = ResponseExtras::default();
    if let Some(policy) = &route.cors {
        extras.cors_owned = true;
        if let Some(origin) = crate::cors::origin(head) {
            policy.write_actual(origin, &mut extras.cors_fields);
        }
    }
    let refuse = |status: u16, decision: Decision, challenge: &[u8], cors: &[u8]| {
        let mut fields = Vec::with_capacity(challenge.len() + cors.len());
        fields.extend_from_slice(challenge);
        fields.extend_from_slice(cors);
        Refusal {
            status,
            decision,
            fields,
        }
    };
    let claims = match &deployment.authentication {
        None => None,
        Some(authenticator) => match authenticator.authenticate(head, now()) {
            Ok(claims) => claims,
            Err(failure) => {
                if let Some(reason) = failure.reason() {
                    tracing::debug!(reason, "token refused");
                }
                let decision = match failure {
                    AuthFailure::Missing => Decision::TokenMissing,
                    AuthFailure::Invalid(_) | AuthFailure::Malformed(_) => Decision::TokenInvalid,
                };
                return Err(refuse(
                    failure.status(),
                    decision,
                    failure.challenge(),
                    &extras.cors_fields,
                ));
            }
        },
    };
    match route.authorization.check(claims.as_deref()) {
        Ok(()) => {}
        Err(Denied::Unauthenticated) => {
            return Err(refuse(
                401,
                Decision::TokenMissing,
                AuthFailure::Missing.challenge(),
                &extras.cors_fields,
            ))
        }
        Err(Denied::InsufficientScope) => {
            return Err(refuse(
                403,
                Decision::ScopeDenied,
                b"WWW-Authenticate: Bearer error=\"insufficient_scope\"\r\n",
                &extras.cors_fields,
            ))
        }
    }
    // Usage plans (subscriber, entitlement, rate limit, quota) go here.
    Ok(Admitted { claims, extras })
}

/// The CORS policy that answers `preflight` on a path, if any: the route the
/// requested method leads to must have one.
pub fn preflight_route(
    entry: &crate::snapshot::PathEntry,
    routes: &[RouteSpec],
    preflight: &Preflight<'_>,
) -> Option<usize> {
    let method = std::str::from_utf8(preflight.method).ok()?;
    match entry.dispatch(routes, method) {
        crate::snapshot::MethodDispatch::Route(r) if routes[r].cors.is_some() => Some(r),
        _ => None,
    }
}

/// Appends the gateway's `204 No Content` answer to a preflight: `fields`
/// (request id, security headers) and the CORS fields when allowed.
pub fn write_preflight_answer(
    out: &mut Vec<u8>,
    route: &RouteSpec,
    preflight: &Preflight<'_>,
    fields: &[u8],
    persistence: crate::http::respond::Persistence,
) {
    crate::http::respond::write_status_line(out, 204, "No Content");
    crate::http::date::write_date_field(out);
    out.extend_from_slice(fields);
    if let Some(policy) = &route.cors {
        policy.write_preflight(preflight, out);
    }
    persistence.write_field(out);
    out.extend_from_slice(b"\r\n");
}
