//! The policy chain: every caller-facing policy of a request, in OCI's fixed
//! order, written once here: network rules ([`super::network`]) → CORS
//! ([`super::cors`]: a preflight is answered, the back end never sees it) →
//! authentication ([`super::auth`]) → route authorization
//! ([`super::authorization`]) → usage plans and rate limits
//! ([`super::usage`]) → back end. A request refused by one step counts
//! toward no later limit.
//!
//! A plain sequence of calls over the compiled policies, monomorphic: each
//! step returns a [`Step`]; the first that does not continue ends the chain.
//! A refusal after the CORS step carries the CORS fields, so a browser can
//! read a 401, 403 or 429.

use super::cors::Preflight;
use super::usage::{LocalShares, RequestTally, UsageSpec};
use super::{
    auth, authorization, cors, network, usage, DeploymentPolicies, RequestCtx, RoutePolicies, Step,
};

/// Runs every policy for a request on a route of `deployment`. `preflight`
/// is the request's CORS preflight when the route it asks about answers
/// preflights.
pub fn run(
    cx: &mut RequestCtx<'_, '_, '_>,
    deployment: &DeploymentPolicies,
    route: &RoutePolicies,
    preflight: Option<&Preflight<'_>>,
    plans: &UsageSpec,
    limits: &LocalShares,
    tally: &RequestTally,
) -> Step {
    /// Ends the chain unless the step continues.
    macro_rules! step {
        ($check:expr) => {
            match $check {
                Step::Continue => {}
                stop => return stop,
            }
        };
    }
    if let Some(policy) = &deployment.network {
        step!(network::check(policy, cx.client));
    }
    if let Some(policy) = &route.cors {
        step!(cors::check(policy, cx, preflight));
    }
    with_cors_fields(cx, |cx| {
        if let Some(authenticator) = &deployment.authentication {
            step!(auth::check(authenticator, cx, auth::now_seconds()));
        }
        if let Some(remote) = &deployment.remote_auth {
            step!(remote.check(cx));
        }
        step!(authorization::check(&route.authorization, cx));
        usage::check(plans, deployment, cx, limits, tally)
    })
}

/// Runs `steps`; a refusal they return gets the CORS fields for this caller.
fn with_cors_fields<'r, 'h, 'b>(
    cx: &mut RequestCtx<'r, 'h, 'b>,
    steps: impl FnOnce(&mut RequestCtx<'r, 'h, 'b>) -> Step,
) -> Step {
    match steps(cx) {
        Step::Reject(mut refusal) => {
            refusal.fields.extend_from_slice(&cx.extras.cors_fields);
            Step::Reject(refusal)
        }
        other => other,
    }
}
