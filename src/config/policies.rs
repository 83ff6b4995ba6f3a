//! Config data for the caller-facing policies: JWT authentication, route
//! authorization, CORS, header transformations and security response headers.
//!
//! Plain serde data like the rest of [`crate::config`] (`deny_unknown_fields`,
//! no logic); names follow OCI API Gateway's policies in snake_case. The
//! snapshot compiler validates and compiles them ([`crate::policy::auth`],
//! [`crate::policy::authorization`], [`crate::policy::cors`], [`crate::policy::headers`],
//! [`crate::policy::security_headers`]).

use serde::{Deserialize, Serialize};

/// A deployment's `authentication` table (OCI's JWT_AUTHENTICATION).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authentication {
    /// Only `"jwt"`.
    #[serde(rename = "type")]
    pub kind: AuthenticationKind,
    /// Header carrying the token (default `Authorization`).
    pub token_header: Option<String>,
    /// Scheme before the token in that header (default `Bearer`; `""` for none).
    pub token_auth_scheme: Option<String>,
    /// Query parameter carrying the token instead of a header.
    pub token_query_param: Option<String>,
    /// Accepted `iss` values (at least one).
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Accepted `aud` values (at least one).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Tolerance on `exp` and `nbf`, e.g. `"30s"` (default 0, at most 5 minutes).
    pub max_clock_skew: Option<String>,
    /// Further claims: required keys and allowed values.
    #[serde(default)]
    pub verify_claims: Vec<ClaimRule>,
    /// A request without any token passes as anonymous (an invalid token never does).
    #[serde(default)]
    pub is_anonymous_access_allowed: bool,
    /// Verified tokens remembered per worker, so a repeated token skips the
    /// signature check for up to a minute (default 1024; 0 turns it off).
    pub token_cache_size: Option<usize>,
    /// jwt: where the verification keys come from (required for `jwt`).
    #[serde(default)]
    pub public_keys: PublicKeys,
    /// http_authorizer: the authorizer to ask.
    pub authorizer: Option<super::HttpAuthorizer>,
    /// oauth2_introspection: the introspection endpoint (RFC 7662).
    pub introspection: Option<super::Introspection>,
}

/// Authentication types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticationKind {
    Jwt,
    HttpAuthorizer,
    Oauth2Introspection,
}

/// One `verify_claims` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    pub key: String,
    /// Allowed values (empty: any value).
    #[serde(default)]
    pub values: Vec<String>,
    /// The claim must be present.
    #[serde(default)]
    pub is_required: bool,
}

/// Where verification keys come from: `type = "static_keys"` (`keys` and/or
/// `jwks_file`) or `type = "remote_jwks"` (`uri`, fetched in the background).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicKeys {
    #[serde(rename = "type")]
    pub kind: PublicKeysKind,
    /// static_keys: keys written inline (PEM or JWK), each with its `kid`.
    #[serde(default)]
    pub keys: Vec<StaticKey>,
    /// static_keys: a JWKS JSON file (relative to the config file's directory).
    pub jwks_file: Option<String>,
    /// remote_jwks: `https://` URL of the JWKS.
    pub uri: Option<String>,
    /// remote_jwks: how long fetched keys are used before a refresh (default `"1h"`).
    pub max_cache_duration: Option<String>,
    /// remote_jwks: PEM file of the CA certificates to trust instead of the
    /// public web roots (relative to the config file's directory).
    pub ca_file: Option<String>,
}

/// Key source kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicKeysKind {
    #[default]
    StaticKeys,
    RemoteJwks,
}

/// One static key: `format = "pem"` with `key` (text) or `key_file`, or
/// `format = "json_web_key"` with the JWK members (`kty`, `n`/`e`, `crv`/`x`/`y`, `k`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticKey {
    pub kid: String,
    pub format: KeyFormat,
    /// Restricts the key to one algorithm (`RS256`, `ES256`, `EdDSA`, `HS256`, ...).
    pub alg: Option<String>,
    /// pem: the key text.
    pub key: Option<String>,
    /// pem: a file holding the key (relative to the config file's directory).
    pub key_file: Option<String>,
    pub kty: Option<String>,
    #[serde(rename = "use")]
    pub use_: Option<String>,
    pub key_ops: Option<Vec<String>>,
    pub n: Option<String>,
    pub e: Option<String>,
    pub crv: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
    pub k: Option<String>,
}

/// Static key formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyFormat {
    Pem,
    JsonWebKey,
}

/// A route's `authorization`: `"anonymous"`, `"authenticated"` or `{ any_of = [scopes] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AuthorizationConfig {
    Kind(AuthorizationKind),
    AnyOf(AnyOf),
}

/// The named authorization kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationKind {
    Anonymous,
    Authenticated,
}

/// `{ any_of = [...] }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnyOf {
    pub any_of: Vec<String>,
}

/// A `cors` table (deployment-wide or per route; the route's wins).
#[derive(Debug, Clone, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cors {
    /// Exact origins (`https://app.example.com`) or `"*"`.
    pub allowed_origins: Vec<String>,
    /// Methods a cross-origin call may use (`"*"`: any; default: GET, HEAD, POST).
    #[serde(default)]
    pub allowed_methods: Vec<String>,
    /// Request headers it may send (`"*"`: any).
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// Response headers the page may read.
    #[serde(default)]
    pub exposed_headers: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`.
    #[serde(default)]
    pub is_allow_credentials_enabled: bool,
    /// How long a browser may cache a preflight answer.
    pub max_age_in_seconds: Option<u32>,
}

/// `request_headers` / `response_headers` of a route. Applied in this order:
/// `remove` or `keep_only`, then `rename`, then `set`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderTransformConfig {
    #[serde(default)]
    pub set: Vec<SetHeader>,
    #[serde(default)]
    pub rename: Vec<RenameHeader>,
    /// Block list.
    #[serde(default)]
    pub remove: Vec<String>,
    /// Allow list (exclusive with `remove`).
    pub keep_only: Option<Vec<String>>,
}

/// One `set` entry; a `value` written as a string may hold `${...}` context
/// variables; `{ env = "NAME" }` or `{ file = "PATH" }` is a secret taken as
/// it is (a credential for the back end), never shown anywhere.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetHeader {
    pub name: String,
    /// Required (checked at compile: an `Option` so that the config
    /// reference can walk the key, whose two shapes serde cannot name).
    #[serde(default)]
    pub value: Option<crate::config::SecretSource>,
    #[serde(default)]
    pub if_exists: IfExists,
}

/// What `set` does when the header is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IfExists {
    #[default]
    Overwrite,
    Append,
    Skip,
}

/// One `rename` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameHeader {
    pub from: String,
    pub to: String,
}

/// A listener's `security_headers`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityHeadersConfig {
    /// `Strict-Transport-Security` value (TLS listeners only).
    pub hsts: Option<String>,
    /// `X-Content-Type-Options: nosniff`.
    #[serde(default)]
    pub content_type_options: bool,
    /// Drop the back end's `Server` and `X-Powered-By`.
    #[serde(default)]
    pub remove_server_headers: bool,
}
