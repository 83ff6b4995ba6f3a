//! Authentication (request phase after network rules and CORS): who is the
//! caller? A deployment's `authentication = { type = "jwt", ... }` takes the
//! token from a header (default `Authorization: Bearer`) or a query
//! parameter and verifies it ([`jwt`], keys from [`keys`] or
//! [`remote_jwks`], claims by [`claims`]).
//!
//! Outcomes: verified claims (kept in the request context for authorization,
//! header transformations, usage plans and logs); anonymous (no token at all
//! and `is_anonymous_access_allowed`); or a refusal that becomes 401 with a
//! `WWW-Authenticate: Bearer` challenge. Compiled once per snapshot; the
//! request path does no I/O and never fetches keys.

pub mod answer_cache;
pub mod authorizer;
pub mod authorizer_answer;
pub mod claims;
pub mod introspection;
pub mod json_object;
pub mod jwt;
pub mod keys;
pub mod remote;
pub mod remote_jwks;
pub mod remote_target;
pub mod token_cache;

pub use claims::Claims;

use crate::config::{Authentication, PublicKeysKind};
use crate::http::request::RequestHead;
use claims::{ClaimChecks, ClaimRule};
use jwt::{KeySource, Verifier};
use keys::KeySet;
use remote_jwks::RemoteSpec;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where the token is read from.
#[derive(Debug)]
pub enum TokenLocation {
    /// A header, with the scheme that must precede the token (empty: none).
    Header {
        name: Box<str>,
        scheme: Box<str>,
    },
    Query(Box<str>),
}

/// A deployment's compiled authentication.
#[derive(Debug)]
pub struct Authenticator {
    pub location: TokenLocation,
    pub verifier: Verifier,
    pub anonymous_allowed: bool,
    /// Unique per compiled authenticator: keys its entries in the token cache.
    pub id: u64,
    /// Entries of the per-worker verified-token cache (0: off).
    pub cache_capacity: usize,
}

/// Source of [`Authenticator::id`].
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh authenticator id.
pub fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Default size of the verified-token cache, per worker.
pub const DEFAULT_TOKEN_CACHE: usize = 1024;

/// Why a request is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No token (and anonymous access is not allowed): plain `Bearer` challenge.
    Missing,
    /// A token that does not verify: `Bearer error="invalid_token"`.
    Invalid(jwt::JwtError),
    /// A malformed request (the token given twice, a scheme without a
    /// token): 400 with `Bearer error="invalid_request"` (RFC 6750 §3.1).
    Malformed(&'static str),
}

impl AuthFailure {
    /// The status of the answer: 400 for a malformed request, else 401.
    pub fn status(self) -> u16 {
        match self {
            AuthFailure::Malformed(_) => 400,
            _ => 401,
        }
    }

    /// The `WWW-Authenticate` field line of the answer.
    pub fn challenge(self) -> &'static [u8] {
        match self {
            AuthFailure::Missing => b"WWW-Authenticate: Bearer\r\n",
            AuthFailure::Invalid(_) => b"WWW-Authenticate: Bearer error=\"invalid_token\"\r\n",
            AuthFailure::Malformed(_) => b"WWW-Authenticate: Bearer error=\"invalid_request\"\r\n",
        }
    }

    /// Why, for the debug log (None for a missing token).
    pub fn reason(self) -> Option<&'static str> {
        match self {
            AuthFailure::Missing => None,
            AuthFailure::Invalid(reason) | AuthFailure::Malformed(reason) => Some(reason),
        }
    }
}

impl Authenticator {
    /// Authenticates the request at `now` (seconds since the epoch):
    /// `Ok(Some(claims))` verified, `Ok(None)` anonymous.
    pub fn authenticate(
        &self,
        head: &RequestHead<'_, '_>,
        now: u64,
    ) -> Result<Option<Rc<Claims>>, AuthFailure> {
        let token = match self.token(head)? {
            Some(token) => token,
            None if self.anonymous_allowed => return Ok(None),
            None => return Err(AuthFailure::Missing),
        };
        if self.cache_capacity > 0 {
            if let Some(claims) = token_cache::get(self.id, token, now) {
                // The signature is known good; the time claims may have run out since.
                self.verifier
                    .checks
                    .check(&claims.map, now)
                    .map_err(AuthFailure::Invalid)?;
                return Ok(Some(claims));
            }
        }
        let claims = Rc::new(
            self.verifier
                .verify(token, now)
                .map_err(AuthFailure::Invalid)?,
        );
        token_cache::put(self.id, token, claims.clone(), now, self.cache_capacity);
        Ok(Some(claims))
    }

    /// The token the request carries: `Ok(None)` none at all. A token
    /// location given twice (two `Authorization` fields, two query
    /// parameters), or the scheme with no token after it, is a malformed
    /// request (RFC 6750 §3.1 `invalid_request`): refusing it keeps the
    /// gateway and the back end from reading different tokens. A credential
    /// under another scheme is still a credential: it gets `invalid_token`.
    fn token<'b>(&self, head: &RequestHead<'_, 'b>) -> Result<Option<&'b str>, AuthFailure> {
        token_at(&self.location, head)
    }
}

/// The token at `location` in the request (see [`Authenticator`]'s rules:
/// given twice or a scheme without a token is malformed).
pub fn token_at<'b>(
    location: &TokenLocation,
    head: &RequestHead<'_, 'b>,
) -> Result<Option<&'b str>, AuthFailure> {
    {
        let twice = AuthFailure::Malformed("token location given more than once");
        match location {
            TokenLocation::Header { name, scheme } => {
                let mut fields = head
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case(name));
                let Some(field) = fields.next() else {
                    return Ok(None);
                };
                if fields.next().is_some() {
                    return Err(twice);
                }
                let value = std::str::from_utf8(field.value)
                    .map_err(|_| AuthFailure::Invalid("token not UTF-8"))?
                    .trim();
                if scheme.is_empty() {
                    return Ok(Some(value));
                }
                let (given, rest) = value.split_once(' ').unwrap_or((value, ""));
                if !given.eq_ignore_ascii_case(scheme) {
                    return Err(AuthFailure::Invalid("credentials under another scheme"));
                }
                match rest.trim_start_matches(' ') {
                    "" => Err(AuthFailure::Malformed("scheme without a token")),
                    token => Ok(Some(token)),
                }
            }
            TokenLocation::Query(param) => {
                let mut values = head
                    .query
                    .into_iter()
                    .flat_map(|q| crate::http::query::values(q, param));
                let first = values.next();
                if values.next().is_some() {
                    return Err(twice);
                }
                // An empty value is a token, and an invalid one (401).
                Ok(first)
            }
        }
    }
}

/// Seconds since the epoch now.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Most clock skew an operator may allow.
const MAX_SKEW: Duration = Duration::from_secs(300);

/// Where a deployment's token is read from: `token_header` (default
/// `Authorization`) after `token_auth_scheme` (default `Bearer`), or
/// `token_query_param`.
pub fn compile_location(config: &Authentication) -> Result<TokenLocation, (String, String)> {
    let fail = |k: &str, m: String| (k.to_string(), m);
    let location: TokenLocation = match (&config.token_query_param, &config.token_header) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "token_query_param",
                "give either token_header or token_query_param, not both".into(),
            ))
        }
        (Some(param), None) if param.is_empty() => {
            return Err(fail("token_query_param", "must not be empty".into()))
        }
        (Some(param), None) => TokenLocation::Query(param.as_str().into()),
        (None, header) => {
            let name = header.as_deref().unwrap_or("Authorization");
            if !crate::http::fields::is_token(name.as_bytes()) {
                return Err(fail(
                    "token_header",
                    format!("`{name}` is not a header name"),
                ));
            }
            TokenLocation::Header {
                name: name.into(),
                scheme: config
                    .token_auth_scheme
                    .as_deref()
                    .unwrap_or("Bearer")
                    .into(),
            }
        }
    };
    Ok(location)
}

/// Compiles a deployment's `authentication`; errors are `(key suffix, message)`
/// with keys relative to the `authentication` table. Key files are read from
/// their paths as they are (loading made them absolute).
pub fn compile(config: &Authentication) -> Result<Authenticator, (String, String)> {
    let fail = |k: &str, m: String| (k.to_string(), m);
    let location = compile_location(config)?;
    if config.issuers.is_empty() {
        return Err(fail("issuers", "at least one issuer is needed".into()));
    }
    if config.audiences.is_empty() {
        return Err(fail("audiences", "at least one audience is needed".into()));
    }
    let skew = match &config.max_clock_skew {
        None => Duration::ZERO,
        Some(text) => humantime::parse_duration(text)
            .ok()
            .filter(|d| *d <= MAX_SKEW)
            .ok_or_else(|| {
                fail(
                    "max_clock_skew",
                    format!("`{text}` is not a duration of at most 5m (e.g. \"30s\")"),
                )
            })?,
    };
    let mut rules = Vec::with_capacity(config.verify_claims.len());
    for (i, rule) in config.verify_claims.iter().enumerate() {
        if rule.key.is_empty() {
            return Err(fail(
                &format!("verify_claims[{i}].key"),
                "must not be empty".into(),
            ));
        }
        rules.push(ClaimRule {
            key: rule.key.clone(),
            values: rule.values.clone(),
            required: rule.is_required,
        });
    }
    let checks = ClaimChecks {
        issuers: config.issuers.clone(),
        audiences: config.audiences.clone(),
        skew: skew.as_secs(),
        rules,
    };
    let keys = compile_keys(config)?;
    Ok(Authenticator {
        location,
        verifier: Verifier { keys, checks },
        anonymous_allowed: config.is_anonymous_access_allowed,
        id: next_id(),
        cache_capacity: config.token_cache_size.unwrap_or(DEFAULT_TOKEN_CACHE),
    })
}

fn compile_keys(config: &Authentication) -> Result<KeySource, (String, String)> {
    let pk = &config.public_keys;
    let fail = |k: &str, m: String| (format!("public_keys.{k}"), m);
    match pk.kind {
        PublicKeysKind::StaticKeys => {
            if pk.uri.is_some() || pk.max_cache_duration.is_some() || pk.ca_file.is_some() {
                return Err(fail(
                    "type",
                    "uri, max_cache_duration and ca_file belong to type = \"remote_jwks\"".into(),
                ));
            }
            let mut set = KeySet::default();
            set.add_static(&pk.keys)
                .map_err(|(i, m)| fail(&format!("keys[{i}]"), m))?;
            if let Some(file) = &pk.jwks_file {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| fail("jwks_file", format!("cannot read `{file}`: {e}")))?;
                set.add_jwks(&text).map_err(|m| fail("jwks_file", m))?;
            }
            if set.is_empty() {
                return Err(fail(
                    "keys",
                    "static_keys needs at least one usable key".into(),
                ));
            }
            Ok(KeySource::Static(set))
        }
        PublicKeysKind::RemoteJwks => {
            if !pk.keys.is_empty() || pk.jwks_file.is_some() {
                return Err(fail(
                    "type",
                    "keys and jwks_file belong to type = \"static_keys\"".into(),
                ));
            }
            let uri = pk
                .uri
                .clone()
                .filter(|u| u.starts_with("https://"))
                .ok_or_else(|| fail("uri", "remote_jwks needs an https:// uri".into()))?;
            let refresh = match &pk.max_cache_duration {
                None => Duration::from_secs(3600),
                Some(text) => humantime::parse_duration(text)
                    .ok()
                    .filter(|d| *d >= Duration::from_secs(1))
                    .ok_or_else(|| {
                        fail(
                            "max_cache_duration",
                            format!("`{text}` is not a duration of at least 1s"),
                        )
                    })?,
            };
            let spec = RemoteSpec {
                uri,
                ca_file: pk.ca_file.as_ref().map(std::path::PathBuf::from),
                refresh,
            };
            let remote = remote_jwks::fetcher(spec).map_err(|m| fail("ca_file", m))?;
            Ok(KeySource::Remote(remote))
        }
    }
}

/// The authentication step of the chain: verified claims go into the
/// request's context; a missing or invalid token is refused with 401 and a
/// `WWW-Authenticate: Bearer` challenge (400 for a malformed request).
pub fn check(
    authenticator: &Authenticator,
    cx: &mut super::RequestCtx<'_, '_, '_>,
    now: u64,
) -> super::Step {
    use crate::telemetry::record::Decision;
    match authenticator.authenticate(cx.head, now) {
        Ok(claims) => {
            cx.claims = claims;
            super::Step::Continue
        }
        Err(failure) => {
            if let Some(reason) = failure.reason() {
                tracing::debug!(reason, "token refused");
            }
            let decision = match failure {
                AuthFailure::Missing => Decision::TokenMissing,
                AuthFailure::Invalid(_) | AuthFailure::Malformed(_) => Decision::TokenInvalid,
            };
            super::Step::Reject(super::Refusal::new(
                failure.status(),
                decision,
                failure.challenge().to_vec(),
            ))
        }
    }
}
