//! Route authorization (request phase after authentication): may this caller
//! use this route? `anonymous` lets everyone through, `authenticated` needs
//! verified claims, `{ any_of = [...] }` needs one of the scopes in the
//! token's `scope` (space-separated) or `scp` (string or array) claim.
//!
//! Pure: reads the claims [`crate::policy::auth`] verified. Not authenticated → 401
//! (the caller should present a token); authenticated without the scope → 403.

use crate::config::{AuthorizationConfig, AuthorizationKind};
use crate::policy::auth::Claims;

/// A route's compiled authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    Anonymous,
    Authenticated,
    AnyOf(Box<[Box<str>]>),
}

/// Why a caller may not use the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No verified token: 401.
    Unauthenticated,
    /// Verified, but without any of the scopes: 403.
    InsufficientScope,
}

impl Authorization {
    /// Compiles a route's `authorization`, given whether its deployment
    /// authenticates callers and, if so, lets callers without a token through
    /// (as in OCI, an `anonymous` route under authentication needs
    /// `is_anonymous_access_allowed`).
    pub fn compile(
        config: Option<&AuthorizationConfig>,
        deployment_authenticates: bool,
        anonymous_allowed: bool,
    ) -> Result<Authorization, String> {
        let compiled = match config {
            None if deployment_authenticates => Authorization::Authenticated,
            None => Authorization::Anonymous,
            Some(AuthorizationConfig::Kind(AuthorizationKind::Anonymous)) => {
                Authorization::Anonymous
            }
            Some(AuthorizationConfig::Kind(AuthorizationKind::Authenticated)) => {
                Authorization::Authenticated
            }
            Some(AuthorizationConfig::AnyOf(any)) => {
                if any.any_of.is_empty()
                    || any.any_of.iter().any(|s| s.is_empty() || s.contains(' '))
                {
                    return Err("any_of needs one or more scopes without spaces".into());
                }
                Authorization::AnyOf(any.any_of.iter().map(|s| s.as_str().into()).collect())
            }
        };
        if compiled == Authorization::Anonymous && deployment_authenticates && !anonymous_allowed {
            return Err(
                "an anonymous route needs is_anonymous_access_allowed = true in the deployment's authentication".into(),
            );
        }
        if compiled != Authorization::Anonymous && !deployment_authenticates {
            return Err(
                "the deployment has no authentication, so no caller could be authorized".into(),
            );
        }
        Ok(compiled)
    }

    /// Decides for a caller with `claims` (None: anonymous).
    pub fn check(&self, claims: Option<&Claims>) -> Result<(), Denied> {
        match (self, claims) {
            (Authorization::Anonymous, _) => Ok(()),
            (_, None) => Err(Denied::Unauthenticated),
            (Authorization::Authenticated, Some(_)) => Ok(()),
            (Authorization::AnyOf(scopes), Some(claims)) => {
                if scopes.iter().any(|s| claims.has_scope(s)) {
                    Ok(())
                } else {
                    Err(Denied::InsufficientScope)
                }
            }
        }
    }
}

/// The authorization step of the chain: no verified token → 401, verified
/// without any of the scopes → 403.
pub fn check(policy: &Authorization, cx: &super::RequestCtx<'_, '_, '_>) -> super::Step {
    use super::auth::AuthFailure;
    use crate::telemetry::record::Decision;
    match policy.check(cx.claims.as_deref()) {
        Ok(()) => super::Step::Continue,
        Err(Denied::Unauthenticated) => super::Step::Reject(super::Refusal::new(
            401,
            Decision::TokenMissing,
            AuthFailure::Missing.challenge().to_vec(),
        )),
        Err(Denied::InsufficientScope) => super::Step::Reject(super::Refusal::new(
            403,
            Decision::ScopeDenied,
            b"WWW-Authenticate: Bearer error=\"insufficient_scope\"\r\n".to_vec(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: &str) -> Claims {
        let mut map = serde_json::Map::new();
        map.insert("scope".into(), scope.into());
        Claims { map }
    }

    // any_of passes with one matching scope, 403 without, 401 when anonymous.
    #[test]
    fn any_of_scopes() {
        let rule = Authorization::AnyOf(vec!["orders:write".into(), "admin".into()].into());
        assert_eq!(
            [
                rule.check(Some(&claims("orders:read admin"))),
                rule.check(Some(&claims("orders:read"))),
                rule.check(None),
            ],
            [
                Ok(()),
                Err(Denied::InsufficientScope),
                Err(Denied::Unauthenticated)
            ]
        );
    }

    // The default follows the deployment; requiring a caller without authentication is an error.
    #[test]
    fn defaults_and_misconfiguration() {
        let authenticated = AuthorizationConfig::Kind(AuthorizationKind::Authenticated);
        assert_eq!(
            (
                Authorization::compile(None, true, false),
                Authorization::compile(None, false, false),
                Authorization::compile(Some(&authenticated), false, false).is_err(),
            ),
            (
                Ok(Authorization::Authenticated),
                Ok(Authorization::Anonymous),
                true
            )
        );
    }
}
