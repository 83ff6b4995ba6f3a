//! Config data for the authentication types that ask a remote service:
//! `type = "http_authorizer"` (an HTTP authorizer, like OCI's authorizer
//! functions or Envoy's `ext_authz`: chosen request parts sent as JSON, the
//! answer says who the caller is) and `type = "oauth2_introspection"`
//! (RFC 7662). Plain serde data, as the rest of [`crate::config`]; compiled
//! by [`crate::policy::auth::authorizer`].

use serde::Deserialize;

/// A deployment's `authentication.authorizer` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAuthorizer {
    /// `http://` or `https://` URL the request parts are POSTed to.
    pub url: String,
    /// The request parts sent (and the cache key): `"header:NAME"`,
    /// `"query:NAME"`, `"path"`, `"method"`, `"client_address"`,
    /// `"client_certificate_subject"`.
    pub parameters: Vec<String>,
    /// Longest wait for an answer, e.g. `"2s"` (default).
    pub timeout: Option<String>,
    /// Longest time an answer is reused (default `"60s"`; the answer's own
    /// expiry, if sooner, wins; `"0s"`: no cache).
    pub max_cache_duration: Option<String>,
    /// Answers remembered per worker (default 1024).
    pub cache_size: Option<usize>,
    /// What a caller gets when the authorizer fails or is too slow:
    /// `"unavailable"` (503, the default) or `"unauthorized"` (401).
    #[serde(default)]
    pub on_error: OnAuthorizerError,
}

/// The answer when the authorizer cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnAuthorizerError {
    #[default]
    Unavailable,
    Unauthorized,
}

/// A deployment's `authentication.introspection` table (RFC 7662); the
/// token is read where `token_header`/`token_auth_scheme` or
/// `token_query_param` say (default `Authorization: Bearer`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Introspection {
    /// `https://` (or `http://`) URL of the introspection endpoint.
    pub url: String,
    /// The gateway's client id at the endpoint (HTTP Basic).
    pub client_id: String,
    /// Its secret: a string, `{ env = .. }` or `{ file = .. }` (required).
    pub client_secret: Option<super::SecretSource>,
    /// Longest wait for an answer (default `"2s"`).
    pub timeout: Option<String>,
    /// Longest reuse of an answer (default `"60s"`; the token's `exp`, if
    /// sooner, wins).
    pub max_cache_duration: Option<String>,
    /// Answers remembered per worker (default 1024).
    pub cache_size: Option<usize>,
    /// The endpoint fails or is too slow: `"unavailable"` (503) or `"unauthorized"` (401).
    #[serde(default)]
    pub on_error: OnAuthorizerError,
}
