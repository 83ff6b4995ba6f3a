//! A route's OCI `requestPolicies` and `responsePolicies` as Portcullis
//! route keys: `authorization` (ANONYMOUS, AUTHENTICATION_ONLY, ANY_OF),
//! `cors`, and header transformations; request validation, query parameter
//! transformations and response caching are findings.

use super::cors::cors;
use super::headers::transformation;
use super::json::{ImportError, Obj, Result};
use super::model::{strings, table, Section};
use super::report::Finding;
use super::request_policies::Facts;
use crate::config::{AnyOf, AuthorizationConfig, AuthorizationKind};
use crate::policy::authorization::Authorization;

const VALIDATION: &str = "request validation is not yet supported; requests are not validated";

/// The route's request policies into `route`.
pub fn request(
    mut obj: Obj<'_>,
    route: &mut Section,
    params: &[String],
    facts: Facts,
    findings: &mut Vec<Finding>,
) -> Result<()> {
    if let Some(policy) = obj.obj_opt("authorization", "a route authorization policy")? {
        authorization(policy, route, facts, findings)?;
    }
    if let Some(policy) = obj.obj_opt("cors", "a CORS policy")? {
        if let Some(value) = cors(policy, findings)? {
            route.set("cors", value);
        }
    }
    if let Some(policy) = obj.obj_opt("headerTransformations", "a header transformation policy")? {
        if let Some(value) = transformation(policy, params, findings)? {
            route.set("request_headers", value);
        }
    }
    for key in [
        "queryParameterValidations",
        "headerValidations",
        "bodyValidation",
    ] {
        obj.not_carried(key, VALIDATION, findings);
    }
    obj.not_carried(
        "queryParameterTransformations",
        "query parameter transformations are not yet supported; the back end gets the query as sent",
        findings,
    );
    obj.not_carried(
        "responseCacheLookup",
        "response caching is not yet supported; every request reaches the back end",
        findings,
    );
    obj.finish("ApiSpecificationRouteRequestPolicies", findings);
    Ok(())
}

/// The route's response policies into `route`.
pub fn response(
    mut obj: Obj<'_>,
    route: &mut Section,
    params: &[String],
    findings: &mut Vec<Finding>,
) -> Result<()> {
    if let Some(policy) = obj.obj_opt("headerTransformations", "a header transformation policy")? {
        if let Some(value) = transformation(policy, params, findings)? {
            route.set("response_headers", value);
        }
    }
    obj.not_carried(
        "responseCacheStore",
        "response caching is not yet supported; nothing is cached",
        findings,
    );
    obj.finish("ApiSpecificationRouteResponsePolicies", findings);
    Ok(())
}

fn authorization(
    mut obj: Obj<'_>,
    route: &mut Section,
    facts: Facts,
    findings: &mut Vec<Finding>,
) -> Result<()> {
    let loc = obj.loc().clone();
    let kind_loc = obj.at("type");
    let (config, value) = match obj.str_req("type")? {
        "ANONYMOUS" => (
            AuthorizationConfig::Kind(AuthorizationKind::Anonymous),
            "anonymous".into(),
        ),
        "AUTHENTICATION_ONLY" => (
            AuthorizationConfig::Kind(AuthorizationKind::Authenticated),
            "authenticated".into(),
        ),
        "ANY_OF" => {
            let scopes = obj.strings("allowedScope")?;
            (
                AuthorizationConfig::AnyOf(AnyOf {
                    any_of: scopes.clone(),
                }),
                table(vec![("any_of", strings(&scopes))]),
            )
        }
        other => {
            return Err(ImportError::at(
                &kind_loc,
                format!("unknown route authorization type `{other}` (OCI's are ANONYMOUS, AUTHENTICATION_ONLY, ANY_OF)"),
            ))
        }
    };
    obj.finish("RouteAuthorizationPolicy", findings);
    if facts.authentication_lost {
        findings.push(Finding::new(
            loc,
            "the deployment's authentication was not carried over, so neither is this route's authorization (the deployment is closed)",
        ));
        return Ok(());
    }
    let authenticates = facts.authentication.is_some();
    let anonymous = facts.authentication == Some(true);
    match Authorization::compile(Some(&config), authenticates, anonymous) {
        Ok(_) => route.set("authorization", value),
        Err(why) => findings.push(Finding::new(
            loc,
            format!("Portcullis refuses it ({why}); the route keeps its default (`authenticated` under authentication)"),
        )),
    }
    Ok(())
}
