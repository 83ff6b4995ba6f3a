//! Reading an HTTP authorizer's answer ([`super::authorizer`]): allowed
//! (the claims: principal as `sub`, scopes as `scope`, context values by
//! name), refused (the challenge to relay) or failed, and until when the
//! answer may be reused. Pure: `now` is an argument.

use super::answer_cache::{Outcome, Verdict};
use super::claims::Claims;
use super::remote_target::SideAnswer;
use serde_json::{Map, Value};
use std::rc::Rc;

/// Reads an authorizer's answer at `now` (ms): the outcome and until when it
/// may be reused (ms).
pub fn read_answer(answer: SideAnswer, now: u64, max_cache_ms: u64) -> (Outcome, u64) {
    let longest = now.saturating_add(max_cache_ms);
    let refused = |fields: Vec<u8>| {
        let fields = if fields.is_empty() {
            b"WWW-Authenticate: Bearer error=\"invalid_token\"\r\n".to_vec()
        } else {
            fields
        };
        Outcome::Answered(Verdict::Refused(fields.into()))
    };
    match answer.status {
        200 => {}
        401 | 403 => return (refused(answer.challenge), longest),
        _ => return (Outcome::Failed("authorizer answered an error status"), 0),
    }
    let Ok(Value::Object(json)) = serde_json::from_slice::<Value>(&answer.body) else {
        return (Outcome::Failed("authorizer answer is not a JSON object"), 0);
    };
    let Some(active) = json.get("active").and_then(Value::as_bool) else {
        return (Outcome::Failed("authorizer answer has no `active`"), 0);
    };
    let until = match (
        json.get("expires_in").and_then(Value::as_f64),
        json.get("exp").and_then(Value::as_f64),
    ) {
        (Some(secs), _) if secs > 0.0 => now.saturating_add((secs * 1000.0) as u64),
        (_, Some(exp)) => (exp * 1000.0) as u64,
        (Some(_), None) => now,
        (None, None) => longest,
    }
    .min(longest);
    if !active {
        let mut fields = answer.challenge;
        if let Some(text) = json.get("www_authenticate").and_then(Value::as_str) {
            if crate::http::fields::is_valid_value(text.as_bytes()) {
                fields = format!("WWW-Authenticate: {text}\r\n").into_bytes();
            }
        }
        return (refused(fields), longest);
    }
    if until <= now && json.contains_key("exp") {
        return (refused(Vec::new()), 0);
    }
    let mut map = Map::new();
    if let Some(Value::Object(context)) = json.get("context") {
        for (name, value) in context {
            map.insert(name.clone(), value.clone());
        }
    }
    if let Some(principal) = json.get("principal").and_then(Value::as_str) {
        map.insert("sub".into(), principal.into());
    }
    let scopes = match json.get("scope") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    map.insert("scope".into(), scopes.into());
    (
        Outcome::Answered(Verdict::Allowed(Rc::new(Claims { map }))),
        until,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> SideAnswer {
        SideAnswer {
            status,
            challenge: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    // An active answer gives the principal, scopes and context as claims, reusable
    // until the sooner of its expiry and the maximum.
    #[test]
    fn active_answer_becomes_claims() {
        let (outcome, until) = read_answer(
            answer(
                200,
                r#"{"active":true,"principal":"alice","scope":["a","b"],"expires_in":5,"context":{"tenant":"acme"}}"#,
            ),
            1000,
            60_000,
        );
        let Outcome::Answered(Verdict::Allowed(claims)) = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(
            (
                claims.subject(),
                claims.has_scope("b"),
                claims.text("tenant").as_deref(),
                until
            ),
            (Some("alice"), true, Some("acme"), 6000)
        );
    }

    // Inactive, 401 and 403 refuse; 5xx and garbage fail.
    #[test]
    fn refusals_and_failures() {
        let kind = |a| match read_answer(a, 0, 1000).0 {
            Outcome::Answered(Verdict::Allowed(_)) => "allowed",
            Outcome::Answered(Verdict::Refused(_)) => "refused",
            Outcome::Failed(_) => "failed",
        };
        assert_eq!(
            [
                kind(answer(200, r#"{"active":false}"#)),
                kind(answer(401, "")),
                kind(answer(403, "")),
                kind(answer(500, "")),
                kind(answer(200, "nope")),
            ],
            ["refused", "refused", "refused", "failed", "failed"]
        );
    }
}
