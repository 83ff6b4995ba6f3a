//! The claim checks of a verified token: `exp` and `nbf` with the allowed
//! clock skew, `iat` a NumericDate when present, `iss`, `aud`, and the
//! operator's `verify_claims`.
//!
//! `exp` is the first instant the token is no longer valid (RFC 7519 §4.1.4:
//! "the current date/time MUST be before" it), so a token is refused from
//! `exp + skew` on; `nbf` is the first instant it is valid (§4.1.5).
//!
//! Pure: runs after the signature is verified ([`super::jwt`]), takes `now`
//! (seconds since the epoch) as an argument, and only reads the claims.

use serde_json::{Map, Value};

/// The verified claims of a request's token, kept for later phases
/// (authorization, header transformations, usage plans, logs).
#[derive(Debug, Clone, Default)]
pub struct Claims {
    pub map: Map<String, Value>,
}

impl Claims {
    /// The claim `name` as text: strings as they are, numbers and booleans
    /// written out; objects, arrays and absent claims give `None`.
    pub fn text(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        match self.map.get(name)? {
            Value::String(s) => Some(s.as_str().into()),
            Value::Number(n) => Some(n.to_string().into()),
            Value::Bool(b) => Some(if *b { "true" } else { "false" }.into()),
            _ => None,
        }
    }

    /// The subject (`sub`), if it is a string.
    pub fn subject(&self) -> Option<&str> {
        self.map.get("sub").and_then(Value::as_str)
    }

    /// Whether the token grants `scope`: in `scope` (space-separated) or
    /// `scp` (space-separated string or array of strings).
    pub fn has_scope(&self, scope: &str) -> bool {
        let in_text = |v: &Value| v.as_str().is_some_and(|s| s.split(' ').any(|x| x == scope));
        self.map.get("scope").is_some_and(in_text)
            || match self.map.get("scp") {
                Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(scope)),
                Some(v) => in_text(v),
                None => false,
            }
    }
}

/// One compiled `verify_claims` entry.
#[derive(Debug, Clone)]
pub struct ClaimRule {
    pub key: String,
    pub values: Vec<String>,
    pub required: bool,
}

/// The claim checks of one deployment.
#[derive(Debug, Clone)]
pub struct ClaimChecks {
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    /// Seconds of tolerance on `exp` and `nbf`.
    pub skew: u64,
    pub rules: Vec<ClaimRule>,
}

/// Why a token's claims were refused (for the debug log; the client only
/// learns `invalid_token`).
pub type ClaimError = &'static str;

impl ClaimChecks {
    /// Checks the claims at `now`.
    pub fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<(), ClaimError> {
        let exp = claims
            .get("exp")
            .and_then(numeric_date)
            .ok_or("exp missing or not a number")?;
        if now >= exp.saturating_add(self.skew) {
            return Err("token expired");
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = numeric_date(nbf).ok_or("nbf not a number")?;
            if now.saturating_add(self.skew) < nbf {
                return Err("token not yet valid");
            }
        }
        if claims
            .get("iat")
            .is_some_and(|iat| numeric_date(iat).is_none())
        {
            return Err("iat not a number");
        }
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or("iss missing")?;
        if !self.issuers.iter().any(|i| i == iss) {
            return Err("issuer not accepted");
        }
        let audience_ok = match claims.get("aud") {
            Some(Value::String(a)) => self.audiences.contains(a),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .any(|a| self.audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !audience_ok {
            return Err("audience not accepted");
        }
        for rule in &self.rules {
            match claims.get(&rule.key) {
                None | Some(Value::Null) if rule.required => return Err("required claim missing"),
                None | Some(Value::Null) => {}
                Some(value) if !rule.values.is_empty() && !value_allowed(value, &rule.values) => {
                    return Err("claim value not allowed")
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// A NumericDate (RFC 7519 §2): seconds, possibly fractional; negatives count as 0.
fn numeric_date(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite())
            .map(|f| f.max(0.0) as u64)
    })
}

/// A claim matches when it (or, for an array, one of its elements) equals an allowed value.
fn value_allowed(value: &Value, allowed: &[String]) -> bool {
    let one = |v: &Value| match v {
        Value::String(s) => allowed.iter().any(|a| a == s),
        Value::Number(n) => allowed.iter().any(|a| *a == n.to_string()),
        Value::Bool(b) => allowed
            .iter()
            .any(|a| a == if *b { "true" } else { "false" }),
        _ => false,
    };
    match value {
        Value::Array(items) => items.iter().any(one),
        v => one(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checks() -> ClaimChecks {
        ClaimChecks {
            issuers: vec!["https://issuer".into()],
            audiences: vec!["api".into()],
            skew: 30,
            rules: vec![ClaimRule {
                key: "tier".into(),
                values: vec!["gold".into()],
                required: true,
            }],
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn base() -> Value {
        json!({"iss": "https://issuer", "aud": ["x", "api"], "exp": 1000, "tier": "gold"})
    }

    // A token before exp + skew passes; at exp + skew it is expired (RFC 7519
    // §4.1.4: now MUST be before exp); without skew, at exp itself.
    #[test]
    fn expiry_with_skew() {
        let c = checks();
        let strict = ClaimChecks {
            skew: 0,
            ..checks()
        };
        assert_eq!(
            [
                c.check(&map(base()), 1029),
                c.check(&map(base()), 1030),
                strict.check(&map(base()), 999),
                strict.check(&map(base()), 1000),
            ],
            [Ok(()), Err("token expired"), Ok(()), Err("token expired")]
        );
    }

    // exp, nbf and iat must be NumericDates: a string, boolean or object is refused.
    #[test]
    fn time_claims_must_be_numbers() {
        let c = checks();
        let with = |k: &str, v: Value| {
            let mut b = base();
            b[k] = v;
            c.check(&map(b), 900)
        };
        assert_eq!(
            [
                with("exp", json!("2000")),
                with("exp", json!(true)),
                with("nbf", json!("1")),
                with("iat", json!("1")),
                with("iat", json!({"t": 1})),
                with("iat", json!(899.5)),
            ],
            [
                Err("exp missing or not a number"),
                Err("exp missing or not a number"),
                Err("nbf not a number"),
                Err("iat not a number"),
                Err("iat not a number"),
                Ok(())
            ]
        );
    }

    // nbf in the future beyond the skew is refused; within the skew it passes.
    #[test]
    fn not_before_with_skew() {
        let mut v = base();
        v["nbf"] = json!(530);
        let c = checks();
        assert_eq!(
            (c.check(&map(v.clone()), 500), c.check(&map(v), 499)),
            (Ok(()), Err("token not yet valid"))
        );
    }

    // Issuer and audience must be among the accepted ones; exp is required.
    #[test]
    fn issuer_audience_and_exp_required() {
        let c = checks();
        let mut wrong_iss = base();
        wrong_iss["iss"] = json!("https://other");
        let mut wrong_aud = base();
        wrong_aud["aud"] = json!("other");
        let mut no_exp = base();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            [wrong_iss, wrong_aud, no_exp].map(|v| c.check(&map(v), 900)),
            [
                Err("issuer not accepted"),
                Err("audience not accepted"),
                Err("exp missing or not a number")
            ]
        );
    }

    // verify_claims: a required claim must be present with an allowed value.
    #[test]
    fn verify_claims_rules() {
        let c = checks();
        let mut silver = base();
        silver["tier"] = json!("silver");
        let mut missing = base();
        missing.as_object_mut().unwrap().remove("tier");
        assert_eq!(
            [silver, missing].map(|v| c.check(&map(v), 900)),
            [
                Err("claim value not allowed"),
                Err("required claim missing")
            ]
        );
    }

    // Scopes come from `scope` (space-separated) or `scp` (string or array).
    #[test]
    fn scopes_from_scope_or_scp() {
        let claims = |v: Value| Claims { map: map(v) };
        assert_eq!(
            [
                claims(json!({"scope": "read write"})).has_scope("write"),
                claims(json!({"scp": ["read", "admin"]})).has_scope("admin"),
                claims(json!({"scp": "read"})).has_scope("read"),
                claims(json!({"scope": "readwrite"})).has_scope("read"),
            ],
            [true, true, true, false]
        );
    }
}
