//! Back-end credentials: what the gateway itself presents to a back end, so
//! that clients hold only their own token and never the back end's (the
//! integration's Basic credentials, its OAuth2 client secret). The one
//! policy on the back end's side of the request: compiled with the back end
//! (`backend.credentials`), asked for the `Authorization` field line while
//! the upstream head is written ([`crate::proxy::rewrite`]).
//!
//! - `basic`: `Authorization: Basic base64(user:password)`, built once per
//!   snapshot (a reload reads a `{ file = .. }` password again).
//! - `oauth2_client_credentials`: a bearer token fetched, cached and renewed
//!   before expiry by the node's [`token`] fetcher; the request path only
//!   reads the cached token. No token at hand (the endpoint refused, or the
//!   token ran out) → 502 `httpBackend.credentialsUnavailable`. A 401 from the
//!   back end asks for one renewal ([`BackendAuth::unauthorized`]).
//!
//! `client_authorization = "replace"` (default) drops the client's own
//! `Authorization`; `"keep"` forwards it and adds the gateway's only when the
//! client sent none. Nothing here prints a secret: `Debug` shows `<secret>`.

pub mod token;

use crate::config::{BackendCredentials, ClientAuthorization, CredentialsKind, Secret};
use base64::Engine;
use std::sync::Arc;
use std::time::Duration;

/// A back end's compiled credentials.
#[derive(Debug)]
pub struct BackendAuth {
    pub kind: AuthKind,
    /// `client_authorization = "keep"`.
    pub keep_client: bool,
}

/// How the credentials are obtained.
#[derive(Debug)]
pub enum AuthKind {
    /// The whole `Authorization: Basic ...\r\n` field line.
    Basic(Secret),
    /// The node's fetcher for this token endpoint and client.
    OAuth2(Arc<token::TokenSource>),
}

/// The field line to send, borrowed or held.
pub enum Field<'a> {
    Static(&'a [u8]),
    Token(Arc<token::Token>),
}

impl Field<'_> {
    /// The `Authorization: ...\r\n` line.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Field::Static(bytes) => bytes,
            Field::Token(token) => token.field(),
        }
    }
}

impl BackendAuth {
    /// The field line for a request: `Ok(None)` when the client's own
    /// `Authorization` is kept; `Err(reason)` when no token is at hand.
    pub fn field(
        &self,
        client_sent_authorization: bool,
    ) -> Result<Option<Field<'_>>, &'static str> {
        if self.keep_client && client_sent_authorization {
            return Ok(None);
        }
        match &self.kind {
            AuthKind::Basic(line) => Ok(Some(Field::Static(line.expose().as_bytes()))),
            AuthKind::OAuth2(source) => source.current().map(|t| Some(Field::Token(t))),
        }
    }

    /// The back end answered 401: an OAuth2 token is renewed once (the next
    /// requests carry the new one); Basic credentials have nothing to renew.
    pub fn unauthorized(&self) {
        if let AuthKind::OAuth2(source) = &self.kind {
            source.renew_after_unauthorized();
        }
    }
}

/// Default of `renew_before`.
const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(60);

/// Compiles a back end's `credentials` table; errors are `(key, message)`
/// relative to it, naming a secret's source, never its value. `warnings`
/// gets a note when a new token fetcher's first fetch failed.
pub fn compile(
    config: &BackendCredentials,
    warnings: &mut Vec<String>,
) -> Result<BackendAuth, (String, String)> {
    let fail = |k: &str, m: String| (k.to_string(), m);
    let misplaced = |key: &str, present: bool, kind: &str| {
        if present {
            Err(fail(
                key,
                format!("`{key}` does not apply to `type = \"{kind}\"`"),
            ))
        } else {
            Ok(())
        }
    };
    let resolve = |key: &str, source: &crate::config::SecretSource| {
        // Loading made a file path absolute.
        source
            .resolve_in(std::path::Path::new("."))
            .map_err(|m| fail(key, m))
    };
    let kind = match config.kind {
        CredentialsKind::Basic => {
            for (key, present) in [
                ("token_url", config.token_url.is_some()),
                ("client_id", config.client_id.is_some()),
                ("client_secret", config.client_secret.is_some()),
                ("scope", config.scope.is_some()),
                ("audience", config.audience.is_some()),
                ("renew_before", config.renew_before.is_some()),
            ] {
                misplaced(key, present, "basic")?;
            }
            let user = config
                .user
                .as_deref()
                .ok_or_else(|| fail("user", "`basic` credentials need a `user`".into()))?;
            if user.contains(':') || user.bytes().any(|b| b.is_ascii_control()) {
                return Err(fail(
                    "user",
                    "must hold no `:` and no control characters".into(),
                ));
            }
            let password = config
                .password
                .as_ref()
                .ok_or_else(|| fail("password", "`basic` credentials need a `password`".into()))?;
            let password = resolve("password", password)?;
            if password.expose().bytes().any(|b| b.is_ascii_control()) {
                return Err(fail(
                    "password",
                    "the secret holds control characters".into(),
                ));
            }
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.expose()));
            AuthKind::Basic(Secret::new(format!("Authorization: Basic {encoded}\r\n")))
        }
        CredentialsKind::Oauth2ClientCredentials => {
            let kind = "oauth2_client_credentials";
            misplaced("user", config.user.is_some(), kind)?;
            misplaced("password", config.password.is_some(), kind)?;
            let token_url = config
                .token_url
                .clone()
                .ok_or_else(|| fail("token_url", format!("`{kind}` needs a `token_url`")))?;
            token::check_url(&token_url).map_err(|m| fail("token_url", m))?;
            let client_id = config
                .client_id
                .clone()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| fail("client_id", format!("`{kind}` needs a `client_id`")))?;
            let secret = config.client_secret.as_ref().ok_or_else(|| {
                fail("client_secret", format!("`{kind}` needs a `client_secret`"))
            })?;
            let client_secret = resolve("client_secret", secret)?;
            let renew_before = match &config.renew_before {
                None => DEFAULT_RENEW_BEFORE,
                Some(text) => humantime::parse_duration(text).map_err(|_| {
                    fail(
                        "renew_before",
                        format!("`{text}` is not a duration (e.g. \"60s\")"),
                    )
                })?,
            };
            let spec = token::TokenSpec {
                token_url,
                client_id,
                client_secret,
                scope: config.scope.clone().filter(|s| !s.is_empty()),
                audience: config.audience.clone().filter(|s| !s.is_empty()),
                renew_before,
            };
            AuthKind::OAuth2(token::source(spec, warnings).map_err(|m| fail("token_url", m))?)
        }
    };
    Ok(BackendAuth {
        kind,
        keep_client: config.client_authorization == ClientAuthorization::Keep,
    })
}

/// The keys of a back end's `credentials` table, as error keys relative to
/// the back end.
const CREDENTIAL_KEYS: [&str; 11] = [
    "credentials.type",
    "credentials.user",
    "credentials.password",
    "credentials.token_url",
    "credentials.client_id",
    "credentials.client_secret",
    "credentials.scope",
    "credentials.audience",
    "credentials.renew_before",
    "credentials.client_authorization",
    "credentials",
];

/// [`compile`] with error keys relative to the back end (as the back end's
/// compiler reports them).
pub fn compile_for_backend(
    config: &BackendCredentials,
    warnings: &mut Vec<String>,
) -> Result<BackendAuth, (&'static str, String)> {
    compile(config, warnings).map_err(|(key, message)| {
        let full = format!("credentials.{key}");
        let key = CREDENTIAL_KEYS.iter().find(|k| **k == full);
        (key.copied().unwrap_or("credentials"), message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretSource;

    fn basic(user: &str, password: &str) -> BackendCredentials {
        BackendCredentials {
            kind: CredentialsKind::Basic,
            user: Some(user.into()),
            password: Some(SecretSource::Inline(password.into())),
            token_url: None,
            client_id: None,
            client_secret: None,
            scope: None,
            audience: None,
            renew_before: None,
            client_authorization: ClientAuthorization::Replace,
        }
    }

    // Basic credentials are one prebuilt field line (RFC 7617), never printed.
    #[test]
    fn basic_field_line() {
        let auth = compile(&basic("Aladdin", "open sesame"), &mut Vec::new()).unwrap();
        let field = auth.field(true).unwrap().unwrap();
        assert_eq!(
            (
                field.bytes(),
                format!("{auth:?}").contains("QWxhZGRpbjpvcGVuIHNlc2FtZQ")
            ),
            (
                &b"Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n"[..],
                false
            )
        );
    }

    // A key of the other type, or a user with a colon, is refused by name.
    #[test]
    fn misplaced_keys_refused() {
        let mut with_scope = basic("u", "p");
        with_scope.scope = Some("s".into());
        assert_eq!(
            [with_scope, basic("a:b", "p")]
                .map(|c| compile(&c, &mut Vec::new()).err().map(|e| e.0)),
            [Some("scope".to_string()), Some("user".to_string())]
        );
    }

    // `keep` forwards the client's own field and adds none.
    #[test]
    fn keep_client_authorization() {
        let mut config = basic("u", "p");
        config.client_authorization = ClientAuthorization::Keep;
        let auth = compile(&config, &mut Vec::new()).unwrap();
        assert_eq!(
            (
                auth.field(true).unwrap().is_none(),
                auth.field(false).unwrap().is_some()
            ),
            (true, true)
        );
    }
}
