//! Config data for the credentials the gateway itself presents to a back end
//! (`backend.credentials`), so that clients never hold the back end's own
//! credentials: `type = "basic"` (`user`, `password`) or
//! `type = "oauth2_client_credentials"` (`token_url`, `client_id`,
//! `client_secret`, optional `scope` and `audience`). Secrets are
//! [`SecretSource`]s (inline, `{ env = .. }`, `{ file = .. }`).
//!
//! One flat table, like [`super::Backend`], so an error keeps its exact key;
//! which keys belong to which type is checked when the snapshot compiles
//! ([`crate::policy::credentials`]). Plain data: never `Serialize`.

use super::{Route, SecretSource};
use serde::Deserialize;

/// A back end's `credentials` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendCredentials {
    #[serde(rename = "type")]
    pub kind: CredentialsKind,
    /// basic: the user name.
    pub user: Option<String>,
    /// basic: the password (a secret).
    pub password: Option<SecretSource>,
    /// oauth2_client_credentials: the token endpoint, `https://` (or
    /// `http://` to a loopback address).
    pub token_url: Option<String>,
    /// oauth2_client_credentials: the gateway's client id at the token endpoint.
    pub client_id: Option<String>,
    /// oauth2_client_credentials: its client secret (a secret).
    pub client_secret: Option<SecretSource>,
    /// oauth2_client_credentials: the `scope` asked for (space-separated).
    pub scope: Option<String>,
    /// oauth2_client_credentials: the `audience` asked for.
    pub audience: Option<String>,
    /// oauth2_client_credentials: renew this long before the token expires
    /// (default `"60s"`, at most a fifth of the token's lifetime).
    pub renew_before: Option<String>,
    /// What happens to an `Authorization` field the client sent: `replace`
    /// (the default: the back end sees only the gateway's credentials) or
    /// `keep` (the client's is forwarded; the gateway's is added only when
    /// the client sent none).
    #[serde(default)]
    pub client_authorization: ClientAuthorization,
}

/// Kinds of back-end credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsKind {
    Basic,
    Oauth2ClientCredentials,
}

/// What to do with the client's own `Authorization` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthorization {
    #[default]
    Replace,
    Keep,
}

/// Every secret a route holds (header values, back-end credentials) with its
/// key relative to the route, for loading to anchor `{ file = .. }` paths.
pub fn route_secrets_mut(route: &mut Route) -> Vec<(String, &mut SecretSource)> {
    let mut out = Vec::new();
    for (table, transform) in [
        ("request_headers", route.request_headers.as_mut()),
        ("response_headers", route.response_headers.as_mut()),
    ] {
        for (i, set) in transform
            .into_iter()
            .flat_map(|t| t.set.iter_mut().enumerate())
        {
            if let Some(value) = set.value.as_mut() {
                out.push((format!("{table}.set[{i}].value"), value));
            }
        }
    }
    let backend = &mut route.backend;
    let cases = backend.cases.iter_mut().flatten().enumerate();
    let case_credentials = cases.map(|(i, case)| {
        (
            format!("backend.cases[{i}].backend"),
            case.backend.credentials.as_mut(),
        )
    });
    let own = std::iter::once(("backend".to_string(), backend.credentials.as_mut()));
    for (at, credentials) in own.chain(case_credentials) {
        let Some(c) = credentials else { continue };
        for (name, source) in [
            ("password", c.password.as_mut()),
            ("client_secret", c.client_secret.as_mut()),
        ] {
            if let Some(source) = source {
                out.push((format!("{at}.credentials.{name}"), source));
            }
        }
    }
    out
}
