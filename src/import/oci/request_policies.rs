//! A deployment's OCI `requestPolicies` as Portcullis deployment keys:
//! `rateLimiting` → `rate_limit`, `usagePlans` → `usage_plans`, `cors` →
//! `cors`, JWT `authentication` → `[deployments.authentication]`.
//!
//! Fails closed: a policy that keeps callers out in OCI (custom or OAuth2
//! token authentication, dynamic authentication, required client
//! certificates, a token location Portcullis cannot read) and cannot be
//! carried closes the deployment with a deny-all `network` rule, so the
//! import never opens what OCI protected. Each such policy is a finding.

use super::cors::cors;
use super::json::{ImportError, Obj, Result};
use super::jwt::jwt;
use super::model::{strings, table, DeploymentOut};
use super::report::Finding;

/// What the routes need to know about the deployment's policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// The deployment authenticates callers (carried), and whether anonymous
    /// access is allowed.
    pub authentication: Option<bool>,
    /// OCI authenticated callers but the policy was not carried.
    pub authentication_lost: bool,
}

/// Translates `requestPolicies` into `out`; returns what routes need.
pub fn request_policies(
    mut obj: Obj<'_>,
    out: &mut DeploymentOut,
    findings: &mut Vec<Finding>,
) -> Result<Facts> {
    let mut facts = Facts::default();
    let mut closed: Vec<&str> = Vec::new();
    if let Some(mut rate) = obj.obj_opt("rateLimiting", "a rate limiting policy")? {
        let rate_loc = rate.at("rateInRequestsPerSecond");
        let per_second = rate.int_req("rateInRequestsPerSecond")?;
        let key_loc = rate.at("rateKey");
        let key = match rate.str_req("rateKey")? {
            "CLIENT_IP" => "client_ip",
            "TOTAL" => "total",
            other => {
                return Err(ImportError::at(
                    &key_loc,
                    format!("unknown rate key `{other}` (OCI's are CLIENT_IP, TOTAL)"),
                ))
            }
        };
        rate.finish("RateLimitingPolicy", findings);
        if per_second > 0 {
            out.section.set(
                "rate_limit",
                table(vec![
                    ("requests_per_second", (per_second as f64).into()),
                    ("key", key.into()),
                ]),
            );
        } else {
            findings.push(Finding::new(
                rate_loc,
                "a rate of no requests per second cannot be carried; no deployment rate limit",
            ));
        }
    }
    if let Some(mut plans) = obj.obj_opt("usagePlans", "a usage plans policy")? {
        let mut locations = Vec::new();
        for (loc, value) in plans.array("tokenLocations")? {
            let text = value.as_str().ok_or_else(|| {
                ImportError::at(
                    &loc,
                    format!("expected a string, found {}", super::json::kind(value)),
                )
            })?;
            match token_location(text) {
                Some(location) => locations.push(location),
                None => findings.push(Finding::new(
                    loc,
                    format!("token location `{text}`: Portcullis reads client tokens from `request.headers[NAME]` and `request.query[NAME]` only"),
                )),
            }
        }
        plans.finish("UsagePlansPolicy", findings);
        if locations.is_empty() {
            closed.push("no token location of its usage plans could be carried");
        } else {
            out.section.set(
                "usage_plans",
                table(vec![("token_locations", strings(&locations))]),
            );
        }
    }
    if let Some(policy) = obj.obj_opt("cors", "a CORS policy")? {
        if let Some(value) = cors(policy, findings)? {
            out.section.set("cors", value);
        }
    }
    if let Some(mut tls) = obj.obj_opt("mutualTls", "a mutual TLS policy")? {
        tls.not_carried(
            "allowedSans",
            "Portcullis does not check client certificate SANs",
            findings,
        );
        let required_loc = tls.at("isVerifiedCertificateRequired");
        if tls.bool_opt("isVerifiedCertificateRequired")? == Some(true) {
            findings.push(Finding::new(
                required_loc,
                "Portcullis asks for client certificates per listener (`tls.client_auth` with the CA bundle, which lives on the OCI gateway, not in the deployment)",
            ));
            closed.push("it requires client certificates");
        }
        tls.finish("MutualTlsDetails", findings);
    }
    if let Some(mut auth) = obj.obj_opt("authentication", "an authentication policy")? {
        let kind_loc = auth.at("type");
        let auth_loc = auth.loc().clone();
        let kind = auth.str_req("type")?;
        let carried = match kind {
            "JWT_AUTHENTICATION" => Some(jwt(auth, findings)?),
            "CUSTOM_AUTHENTICATION" | "TOKEN_AUTHENTICATION" => {
                let what = if kind == "CUSTOM_AUTHENTICATION" {
                    "authentication by an OCI Function (CUSTOM_AUTHENTICATION) has no equivalent"
                } else {
                    "OAuth2 token introspection and discovery (TOKEN_AUTHENTICATION) are not yet supported"
                };
                findings.push(Finding::new(auth_loc, what));
                None
            }
            other => {
                return Err(ImportError::at(
                    &kind_loc,
                    format!("unknown authentication type `{other}` (OCI's are JWT_AUTHENTICATION, CUSTOM_AUTHENTICATION, TOKEN_AUTHENTICATION)"),
                ))
            }
        };
        match carried {
            Some((section, anonymous)) if !section.skipped => {
                out.tables.push(("authentication".to_string(), section));
                facts.authentication = Some(anonymous);
            }
            refused => {
                if let Some((section, _)) = refused {
                    out.tables.push(("authentication".to_string(), section));
                }
                facts.authentication_lost = true;
                closed.push("its authentication was not carried over");
            }
        }
    }
    if obj.not_carried(
        "dynamicAuthentication",
        "dynamic authentication (a policy chosen by request context) is not yet supported",
        findings,
    ) {
        facts.authentication_lost = true;
        closed.push("its dynamic authentication was not carried over");
    }
    obj.finish("ApiSpecificationRequestPolicies", findings);
    if !closed.is_empty() {
        out.section.comment(format!(
            "CLOSED to every client: {}. Remove `network` once that is set up another way.",
            closed.join("; ")
        ));
        out.section.set(
            "network",
            table(vec![("deny", strings(&["0.0.0.0/0", "::/0"]))]),
        );
    }
    Ok(facts)
}

/// `request.headers[NAME]` → `header:NAME`, `request.query[NAME]` → `query:NAME`.
pub fn token_location(text: &str) -> Option<String> {
    let inner = |prefix: &str| {
        text.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
            .filter(|name| !name.is_empty() && !name.contains(['[', ']']))
    };
    if let Some(name) = inner("request.headers") {
        return crate::http::fields::is_token(name.as_bytes()).then(|| format!("header:{name}"));
    }
    inner("request.query")
        .filter(|name| !name.contains(['&', '=', '#']))
        .map(|name| format!("query:{name}"))
}

#[cfg(test)]
mod tests {
    use super::token_location;

    // OCI's header and query token locations become Portcullis's; others do not.
    #[test]
    fn token_locations() {
        assert_eq!(
            [
                token_location("request.headers[X-Client-Token]"),
                token_location("request.query[api_key]"),
                token_location("request.auth[sub]"),
            ],
            [
                Some("header:X-Client-Token".to_string()),
                Some("query:api_key".to_string()),
                None
            ]
        );
    }
}
