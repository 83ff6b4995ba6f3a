//! What the remote authentication types share ([`super::authorizer`],
//! [`super::introspection`]): the call's settings ([`RemoteCall`]), the
//! deployment's choice of one ([`RemoteAuth`]), finding a known answer
//! (handed over by the connection loop, or cached per worker), storing a new
//! one, and turning an outcome into the chain's step (fail closed).

use super::answer_cache::{self, Outcome, Verdict};
use super::remote_target::{RemoteTarget, SideAnswer};
use crate::config::{OnAuthorizerError, Secret};
use crate::policy::{Question, Refusal, RequestCtx, Step};
use crate::telemetry::record::Decision;
use std::time::Duration;

/// How a remote service is called and its answers kept.
#[derive(Debug)]
pub struct RemoteCall {
    /// Unique per compile: keys its cache entries.
    pub id: u64,
    pub target: RemoteTarget,
    pub timeout: Duration,
    /// The request body's media type.
    pub content_type: &'static str,
    /// Field lines sent with every call (client authentication): a secret.
    pub fields: Option<Secret>,
    /// Milliseconds an answer may be reused at most (0: no cache).
    pub max_cache_ms: u64,
    pub cache_size: usize,
    /// Status when the service fails: 503 or 401.
    pub on_error: u16,
}

/// A deployment's remote authentication.
#[derive(Debug)]
pub enum RemoteAuth {
    Authorizer(super::authorizer::Authorizer),
    Introspection(super::introspection::Introspector),
}

impl RemoteAuth {
    /// How it is called.
    pub fn call(&self) -> &RemoteCall {
        match self {
            RemoteAuth::Authorizer(a) => &a.call,
            RemoteAuth::Introspection(i) => &i.call,
        }
    }

    /// The authentication step.
    pub fn check(&self, cx: &mut RequestCtx<'_, '_, '_>) -> Step {
        match self {
            RemoteAuth::Authorizer(a) => super::authorizer::check(a, cx),
            RemoteAuth::Introspection(i) => super::introspection::check(i, cx),
        }
    }

    /// Takes the result of the call for `question` (see [`store`]).
    pub fn deliver(&self, question: &Question, result: Result<SideAnswer, &'static str>) {
        let now = now_millis();
        let max = self.call().max_cache_ms;
        let (outcome, expires_at) = match (result, self) {
            (Err(reason), _) => (Outcome::Failed(reason), 0),
            (Ok(answer), RemoteAuth::Authorizer(_)) => {
                super::authorizer_answer::read_answer(answer, now, max)
            }
            (Ok(answer), RemoteAuth::Introspection(_)) => {
                super::introspection::read_answer(answer, now, max)
            }
        };
        store(self.call(), &question.key, outcome, expires_at, now);
    }
}

/// Milliseconds since the epoch now.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The known outcome for `key`: handed over by the call just made, else cached.
pub fn known(call: &RemoteCall, key: &[u8]) -> Option<Outcome> {
    answer_cache::take_handed(call.id, key)
        .or_else(|| answer_cache::get(call.id, key, now_millis()).map(Outcome::Answered))
}

/// Caches an answer until `expires_at` (ms; failures never) and hands the
/// outcome to the request's next pass.
pub fn store(call: &RemoteCall, key: &[u8], outcome: Outcome, expires_at: u64, now: u64) {
    if let (Outcome::Answered(verdict), true) = (&outcome, expires_at > now) {
        answer_cache::put(call.id, key, verdict.clone(), expires_at, call.cache_size);
    }
    answer_cache::hand_over(call.id, key, outcome);
}

/// Applies an outcome to the request: claims in, or a refusal (fail closed).
pub fn apply(call: &RemoteCall, outcome: Outcome, cx: &mut RequestCtx<'_, '_, '_>) -> Step {
    match outcome {
        Outcome::Answered(Verdict::Allowed(claims)) => {
            cx.claims = Some(claims);
            Step::Continue
        }
        Outcome::Answered(Verdict::Refused(fields)) => Step::Reject(Refusal::new(
            401,
            Decision::AuthorizerRefused,
            fields.to_vec(),
        )),
        Outcome::Failed(reason) => {
            tracing::debug!(reason, "remote authentication failed; refusing");
            let fields: &[u8] = if call.on_error == 401 {
                b"WWW-Authenticate: Bearer\r\n"
            } else {
                b"Retry-After: 1\r\n"
            };
            Step::Reject(Refusal::new(
                call.on_error,
                Decision::AuthorizerUnavailable,
                fields.to_vec(),
            ))
        }
    }
}

/// The shared settings of a remote call; errors are `(key, message)` under `table`.
#[allow(clippy::too_many_arguments)]
pub fn compile_call(
    table: &str,
    url: &str,
    timeout: Option<&str>,
    max_cache: Option<&str>,
    cache_size: Option<usize>,
    on_error: OnAuthorizerError,
    content_type: &'static str,
    fields: Option<Secret>,
    warnings: &mut Vec<String>,
) -> Result<RemoteCall, (String, String)> {
    let key = |k: &str| format!("{table}.{k}");
    let duration = |k: &str, text: Option<&str>, default: Duration| match text {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text)
            .map_err(|_| (key(k), format!("`{text}` is not a duration (e.g. \"2s\")"))),
    };
    let target = super::remote_target::compile(url, warnings).map_err(|m| (key("url"), m))?;
    let timeout = duration("timeout", timeout, Duration::from_secs(2))?;
    if timeout.is_zero() {
        return Err((key("timeout"), "must be more than 0s".into()));
    }
    let max_cache = duration("max_cache_duration", max_cache, Duration::from_secs(60))?;
    Ok(RemoteCall {
        id: super::next_id(),
        target,
        timeout,
        content_type,
        fields,
        max_cache_ms: max_cache.as_millis() as u64,
        cache_size: cache_size.unwrap_or(1024),
        on_error: match on_error {
            OnAuthorizerError::Unavailable => 503,
            OnAuthorizerError::Unauthorized => 401,
        },
    })
}

/// Refuses the keys of `type = "jwt"` under another type.
pub fn refuse_jwt_keys(config: &crate::config::Authentication) -> Result<(), (String, String)> {
    let jwt_keys = !config.issuers.is_empty()
        || !config.audiences.is_empty()
        || !config.verify_claims.is_empty()
        || config.max_clock_skew.is_some()
        || config.token_cache_size.is_some()
        || !config.public_keys.keys.is_empty()
        || config.public_keys.jwks_file.is_some()
        || config.public_keys.uri.is_some();
    if jwt_keys {
        return Err((
            "type".into(),
            "issuers, audiences, verify_claims, max_clock_skew, token_cache_size and public_keys belong to type = \"jwt\"".into(),
        ));
    }
    Ok(())
}
