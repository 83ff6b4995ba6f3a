//! The OAuth2 token introspection authentication type
//! (`type = "oauth2_introspection"`, RFC 7662) for opaque access tokens: the
//! token (from `Authorization: Bearer`, or the configured header or query
//! parameter) is POSTed as `token=...&token_type_hint=access_token` to the
//! introspection endpoint, the gateway authenticating with its client id and
//! secret (HTTP Basic, RFC 6749 §2.3.1; the secret by reference).
//!
//! `active: true` lets the caller in: the answer's members become the
//! request's claims (`scope` for route authorization, `sub`, `client_id`,
//! `username` and the rest for `${request.auth[NAME]}`). `active: false`, or
//! an `exp` already past, is a 401 `Bearer error="invalid_token"`. No token
//! is a 401 without a call. An endpoint that fails or does not answer within
//! `timeout` fails closed (503, or 401 with `on_error = "unauthorized"`).
//!
//! Answers are cached per worker until `min(exp, max_cache_duration)`,
//! keyed by the SHA-256 digest of the token (the token itself is kept
//! nowhere but in the request in flight); the call is made as for the HTTP
//! authorizer (see [`super::authorizer`]). The token never reaches a log.

use super::answer_cache::{Outcome, Verdict};
use super::claims::Claims;
use super::remote::{apply, compile_call, known, RemoteCall};
use super::remote_target::SideAnswer;
use super::{token_at, AuthFailure, TokenLocation};
use crate::config::{Authentication, Secret};
use crate::policy::{Question, Refusal, RequestCtx, Step};
use crate::telemetry::record::Decision;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::rc::Rc;

/// A deployment's compiled introspection.
#[derive(Debug)]
pub struct Introspector {
    pub call: RemoteCall,
    pub location: TokenLocation,
}

/// Compiles `authentication` of `type = "oauth2_introspection"`; errors are
/// `(key, message)` relative to the `authentication` table.
pub fn compile(
    config: &Authentication,
    warnings: &mut Vec<String>,
) -> Result<Introspector, (String, String)> {
    super::remote::refuse_jwt_keys(config)?;
    let i = config.introspection.as_ref().ok_or_else(|| {
        (
            "introspection".to_string(),
            "type = \"oauth2_introspection\" needs an `introspection` table".to_string(),
        )
    })?;
    let location = super::compile_location(config)?;
    let secret = i.client_secret.as_ref().ok_or_else(|| {
        (
            "introspection.client_secret".to_string(),
            "a `client_secret` is needed".to_string(),
        )
    })?;
    // Loading made a file path absolute.
    let secret = secret
        .resolve_in(std::path::Path::new("."))
        .map_err(|m| ("introspection.client_secret".to_string(), m))?;
    if i.client_id.is_empty() {
        return Err(("introspection.client_id".into(), "must not be empty".into()));
    }
    let credentials = format!(
        "{}:{}",
        form_encode(&i.client_id),
        form_encode(secret.expose())
    );
    let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
    let call = compile_call(
        "introspection",
        &i.url,
        i.timeout.as_deref(),
        i.max_cache_duration.as_deref(),
        i.cache_size,
        i.on_error,
        "application/x-www-form-urlencoded",
        Some(Secret::new(format!("Authorization: Basic {basic}\r\n"))),
        warnings,
    )?;
    Ok(Introspector { call, location })
}

/// The authentication step: no token → 401; a known answer applies now;
/// otherwise the chain waits for the call.
pub fn check(introspector: &Introspector, cx: &mut RequestCtx<'_, '_, '_>) -> Step {
    let token = match token_at(&introspector.location, cx.head) {
        Ok(Some(token)) => token,
        Ok(None) => return refuse(AuthFailure::Missing, Decision::TokenMissing),
        Err(failure) => return refuse(failure, Decision::TokenInvalid),
    };
    let digest = Sha256::digest(token.as_bytes());
    match known(&introspector.call, &digest) {
        Some(outcome) => apply(&introspector.call, outcome, cx),
        None => {
            let mut body = b"token=".to_vec();
            body.extend_from_slice(form_encode(token).as_bytes());
            body.extend_from_slice(b"&token_type_hint=access_token");
            Step::Await(Question {
                deployment: cx.deployment,
                key: digest.to_vec(),
                body,
            })
        }
    }
}

fn refuse(failure: AuthFailure, decision: Decision) -> Step {
    Step::Reject(Refusal::new(
        failure.status(),
        decision,
        failure.challenge().to_vec(),
    ))
}

/// Reads an introspection answer at `now` (ms): the outcome and until when
/// it may be reused (ms).
pub fn read_answer(answer: SideAnswer, now: u64, max_cache_ms: u64) -> (Outcome, u64) {
    let longest = now.saturating_add(max_cache_ms);
    let invalid = || {
        let fields: Rc<[u8]> = b"WWW-Authenticate: Bearer error=\"invalid_token\"\r\n"[..].into();
        Outcome::Answered(Verdict::Refused(fields))
    };
    if answer.status != 200 {
        return (
            Outcome::Failed("introspection endpoint answered an error status"),
            0,
        );
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&answer.body) else {
        return (
            Outcome::Failed("introspection answer is not a JSON object"),
            0,
        );
    };
    match map.get("active").and_then(Value::as_bool) {
        None => return (Outcome::Failed("introspection answer has no `active`"), 0),
        Some(false) => return (invalid(), longest),
        Some(true) => {}
    }
    let until = match map.get("exp").and_then(Value::as_f64) {
        Some(exp) => ((exp * 1000.0) as u64).min(longest),
        None => longest,
    };
    if until <= now {
        // Expired: refused now, and not remembered.
        return (invalid(), 0);
    }
    (
        Outcome::Answered(Verdict::Allowed(Rc::new(Claims { map }))),
        until,
    )
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: &str) -> SideAnswer {
        SideAnswer {
            status: 200,
            challenge: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    // Active answers are claims until min(exp, max); inactive and expired refuse.
    #[test]
    fn answers() {
        let kind = |body: &str| match read_answer(answer(body), 10_000, 60_000) {
            (Outcome::Answered(Verdict::Allowed(c)), until) => {
                format!("allowed {} {until}", c.has_scope("read"))
            }
            (Outcome::Answered(Verdict::Refused(_)), _) => "refused".into(),
            (Outcome::Failed(_), _) => "failed".into(),
        };
        assert_eq!(
            [
                kind(r#"{"active":true,"scope":"read write","exp":20}"#),
                kind(r#"{"active":true,"scope":"read"}"#),
                kind(r#"{"active":false}"#),
                kind(r#"{"active":true,"exp":5}"#),
                kind("[]"),
            ],
            [
                "allowed true 20000",
                "allowed true 70000",
                "refused",
                "refused",
                "failed"
            ]
        );
    }
}
