//! The compile face of every policy, in one place: a deployment's and a
//! route's policies from the operator's config into the values the snapshot
//! holds. Each policy module validates its own part; an error is `(key,
//! message)` with the key relative to the deployment or route.

use super::{
    auth, authorization::Authorization, cors::CorsPolicy, headers::HeaderTransform, network, usage,
    DeploymentPolicies, RoutePolicies,
};
use crate::config::{AuthenticationKind, Deployment, HeaderTransformConfig, Route};
use auth::remote::RemoteAuth;

type CompileError = (String, String);

/// Prefixes an error's key with the policy's table name.
fn under(table: &str) -> impl Fn(CompileError) -> CompileError + '_ {
    move |(k, m)| (format!("{table}.{k}"), m)
}

/// A deployment's request policies (key files are read from the paths as
/// they are: loading made them absolute).
pub fn deployment_policies(
    deployment: &Deployment,
    warnings: &mut Vec<String>,
) -> Result<DeploymentPolicies, CompileError> {
    let same = |k: &str| k.to_string();
    let kind = deployment.authentication.as_ref().map(|a| a.kind);
    let (jwt, remote) = match (&deployment.authentication, kind) {
        (Some(a), Some(AuthenticationKind::HttpAuthorizer)) => (
            None,
            Some(RemoteAuth::Authorizer(
                auth::authorizer::compile(a, warnings).map_err(under("authentication"))?,
            )),
        ),
        (Some(a), Some(AuthenticationKind::Oauth2Introspection)) => (
            None,
            Some(RemoteAuth::Introspection(
                auth::introspection::compile(a, warnings).map_err(under("authentication"))?,
            )),
        ),
        (Some(a), _) => (
            Some(auth::compile(a).map_err(under("authentication"))?),
            None,
        ),
        (None, _) => (None, None),
    };
    Ok(DeploymentPolicies {
        authentication: jwt,
        remote_auth: remote,
        network: match &deployment.network {
            Some(n) => Some((
                network::compile_rule(&n.allow, &n.deny).map_err(under("network"))?,
                n.on_deny,
            )),
            None => None,
        },
        cors: match &deployment.cors {
            Some(c) => Some(CorsPolicy::compile(c).map_err(under("cors"))?),
            None => None,
        },
        usage: match &deployment.usage_plans {
            Some(u) => Some(usage::compile_deployment_usage(u, &same)?),
            None => None,
        },
        rate_limit: match &deployment.rate_limit {
            Some(r) => Some(usage::compile_deployment_limit(r, &same)?),
            None => None,
        },
    })
}

/// A route's policies; `params` are the path parameters header templates
/// may name.
pub fn route_policies(
    route: &Route,
    deployment: &DeploymentPolicies,
    params: &[String],
) -> Result<RoutePolicies, CompileError> {
    let authentication = deployment.authentication.as_ref();
    let authorization = Authorization::compile(
        route.authorization.as_ref(),
        authentication.is_some() || deployment.remote_auth.is_some(),
        authentication.is_some_and(|a| a.anonymous_allowed),
    )
    .map_err(|m| ("authorization".to_string(), m))?;
    let cors = match &route.cors {
        Some(c) => Some(CorsPolicy::compile(c).map_err(under("cors"))?),
        None => deployment.cors.clone(),
    };
    let transform = |table: &Option<HeaderTransformConfig>, name: &str| {
        table
            .as_ref()
            .map(|t| HeaderTransform::compile(t, params).map_err(under(name)))
            .transpose()
    };
    let validation = match &route.validation {
        Some(config) => {
            let schema_text = match &config.body_schema {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    (
                        "validation.body_schema".to_string(),
                        format!("cannot read {path}: {e}"),
                    )
                })?),
                None => None,
            };
            crate::policy::validation::compile(config, schema_text.as_deref())
                .map_err(under("validation"))?
        }
        None => None,
    };
    Ok(RoutePolicies {
        validation,
        authorization,
        cors,
        request_headers: transform(&route.request_headers, "request_headers")?,
        response_headers: transform(&route.response_headers, "response_headers")?,
    })
}
