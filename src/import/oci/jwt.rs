//! OCI's JWT_AUTHENTICATION policy as a Portcullis `[deployments.authentication]`
//! table: token location, issuers, audiences, clock skew, claims, anonymous
//! access, and static keys (PEM or JSON Web Key) or a remote JWKS. Static keys
//! are compiled with the gateway's own key loader, so a key Portcullis cannot
//! use is a finding here rather than an error at `check`.

use super::json::{ImportError, Obj, Result};
use super::model::{array, parse_as, strings, table, Section};
use super::report::Finding;
use toml_edit::Value;

/// Longest `max_clock_skew` Portcullis accepts, in seconds.
const MAX_SKEW: f64 = 300.0;

/// The authentication table and whether anonymous access is allowed. A
/// policy Portcullis would refuse comes back `skipped` (written commented
/// out, for the operator to mend), with a finding.
pub fn jwt(mut obj: Obj<'_>, findings: &mut Vec<Finding>) -> Result<(Section, bool)> {
    let loc = obj.loc().clone();
    let mut section = Section::default();
    section.set("type", "jwt");
    for (oci, key) in [
        ("tokenHeader", "token_header"),
        ("tokenQueryParam", "token_query_param"),
        ("tokenAuthScheme", "token_auth_scheme"),
    ] {
        if let Some(value) = obj.str_opt(oci)? {
            section.set(key, value);
        }
    }
    section.set("issuers", strings(&obj.strings("issuers")?));
    section.set("audiences", strings(&obj.strings("audiences")?));
    let skew_loc = obj.at("maxClockSkewInSeconds");
    if let Some(skew) = obj.num_opt("maxClockSkewInSeconds")? {
        let kept = skew.clamp(0.0, MAX_SKEW);
        if kept != skew {
            findings.push(Finding::new(
                skew_loc,
                format!("a clock skew of {skew} s is outside what Portcullis accepts (0 to {MAX_SKEW} s); {kept} s is used"),
            ));
        }
        let millis = (kept * 1000.0).round() as u64;
        let text = if millis.is_multiple_of(1000) {
            format!("{}s", millis / 1000)
        } else {
            format!("{millis}ms")
        };
        section.set("max_clock_skew", text);
    }
    let mut claims = Vec::new();
    for (claim_loc, value) in obj.array("verifyClaims")? {
        let mut claim = Obj::new(value, claim_loc, "a JWT claim rule")?;
        let mut pairs: Vec<(&str, Value)> = vec![("key", claim.str_req("key")?.into())];
        let values = claim.strings("values")?;
        if !values.is_empty() {
            pairs.push(("values", strings(&values)));
        }
        if claim.bool_opt("isRequired")? == Some(true) {
            pairs.push(("is_required", true.into()));
        }
        claim.finish("JsonWebTokenClaim", findings);
        claims.push(table(pairs));
    }
    if !claims.is_empty() {
        section.set("verify_claims", array(claims));
    }
    let anonymous = obj.bool_opt("isAnonymousAccessAllowed")? == Some(true);
    if anonymous {
        section.set("is_anonymous_access_allowed", true);
    }
    let keys = obj.obj_req("publicKeys", "a public key set")?;
    let (public_keys, remote) = public_keys(keys, findings)?;
    section.set("public_keys", public_keys);
    obj.finish("JsonWebTokenAuthenticationPolicy", findings);
    let checked =
        parse_as::<crate::config::Authentication>(&section.as_inline()).and_then(|config| {
            if remote {
                // Compiling a remote JWKS starts its fetcher: the URL is checked at `check`.
                return Ok(());
            }
            crate::policy::auth::compile(&config)
                .map(|_| ())
                .map_err(|(key, message)| format!("{key}: {message}"))
        });
    if let Err(why) = checked {
        findings.push(Finding::new(
            loc,
            format!("Portcullis refuses this JWT policy ({why}); it is written commented out"),
        ));
        section.skipped = true;
    }
    Ok((section, anonymous))
}

/// `public_keys` and whether they are fetched (remote JWKS).
fn public_keys(mut obj: Obj<'_>, findings: &mut Vec<Finding>) -> Result<(Value, bool)> {
    let kind_loc = obj.at("type");
    match obj.str_req("type")? {
        "STATIC_KEYS" => {
            let mut keys = Vec::new();
            for (key_loc, value) in obj.array("keys")? {
                keys.push(static_key(
                    Obj::new(value, key_loc, "a static public key")?,
                    findings,
                )?);
            }
            obj.finish("StaticPublicKeySet", findings);
            Ok((
                table(vec![("type", "static_keys".into()), ("keys", array(keys))]),
                false,
            ))
        }
        "REMOTE_JWKS" => {
            let uri = obj.str_req("uri")?;
            let mut pairs: Vec<(&str, Value)> =
                vec![("type", "remote_jwks".into()), ("uri", uri.into())];
            if let Some(hours) = obj.int_opt("maxCacheDurationInHours")? {
                pairs.push(("max_cache_duration", format!("{}h", hours.max(1)).into()));
            }
            let verify_loc = obj.at("isSslVerifyDisabled");
            if obj.bool_opt("isSslVerifyDisabled")? == Some(true) {
                findings.push(Finding::new(
                    verify_loc,
                    "Portcullis always verifies the JWKS server's certificate (give `ca_file` for a private CA)",
                ));
            }
            obj.finish("RemoteJsonWebKeySet", findings);
            Ok((table(pairs), true))
        }
        other => Err(ImportError::at(
            &kind_loc,
            format!("unknown public key set type `{other}` (OCI's are STATIC_KEYS, REMOTE_JWKS)"),
        )),
    }
}

/// One static key: PEM text or a JSON Web Key's members.
fn static_key(mut obj: Obj<'_>, findings: &mut Vec<Finding>) -> Result<Value> {
    let kid = obj.str_req("kid")?;
    let format_loc = obj.at("format");
    let mut pairs: Vec<(&str, Value)> = vec![("kid", kid.into())];
    match obj.str_req("format")? {
        "PEM" => {
            pairs.push(("format", "pem".into()));
            pairs.push(("key", obj.str_req("key")?.into()));
        }
        "JSON_WEB_KEY" => {
            pairs.push(("format", "json_web_key".into()));
            for member in ["kty", "alg", "use", "n", "e", "crv", "x", "y"] {
                if let Some(value) = obj.str_opt(member)? {
                    pairs.push((member, value.into()));
                }
            }
            let ops = obj.strings("key_ops")?;
            if !ops.is_empty() {
                pairs.push(("key_ops", strings(&ops)));
            }
        }
        other => {
            return Err(ImportError::at(
                &format_loc,
                format!("unknown static key format `{other}` (OCI's are PEM, JSON_WEB_KEY)"),
            ))
        }
    }
    obj.finish("StaticPublicKey", findings);
    Ok(table(pairs))
}

#[cfg(test)]
mod tests {
    use super::jwt;
    use crate::import::oci::json::Obj;
    use crate::import::oci::report::Loc;
    use serde_json::json;

    // A remote JWKS keeps its URI and cache time; a disabled certificate check is a finding.
    #[test]
    fn remote_jwks() {
        let value = json!({"type": "JWT_AUTHENTICATION", "issuers": ["https://idcs.example.com/"],
            "audiences": ["oic"], "maxClockSkewInSeconds": 1.5,
            "publicKeys": {"type": "REMOTE_JWKS", "uri": "https://idcs.example.com/admin/v1/SigningCert/jwk",
                "maxCacheDurationInHours": 2, "isSslVerifyDisabled": true}});
        let mut obj = Obj::new(&value, Loc::root("f"), "x").unwrap();
        obj.raw("type");
        let mut findings = Vec::new();
        let (section, anonymous) = jwt(obj, &mut findings).unwrap();
        assert_eq!(
            (
                section.as_inline().to_string(),
                anonymous,
                section.skipped,
                findings.iter().map(|f| f.loc.path().to_string()).collect::<Vec<_>>(),
            ),
            (
                "{ type = \"jwt\", issuers = [\"https://idcs.example.com/\"], audiences = [\"oic\"], max_clock_skew = \"1500ms\", public_keys = { type = \"remote_jwks\", uri = \"https://idcs.example.com/admin/v1/SigningCert/jwk\", max_cache_duration = \"2h\" } }".to_string(),
                false,
                false,
                vec!["$.publicKeys.isSslVerifyDisabled".to_string()],
            )
        );
    }
}
