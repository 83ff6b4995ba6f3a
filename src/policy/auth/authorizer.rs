//! The HTTP authorizer authentication type (`type = "http_authorizer"`):
//! the chosen request parts go as a JSON object to an HTTP(S) URL, whose
//! answer says whether the caller is let in, who it is, its scopes, how long
//! the answer holds and context values (OCI's authorizer functions, Envoy's
//! `ext_authz`, nginx's `auth_request`).
//!
//! The question (`POST`, `Content-Type: application/json`), members in the
//! configured order, only those configured:
//! `{"method":..,"path":..,"headers":{"name":"value"},"query":{"name":"value"},
//! "client_address":..,"client_certificate_subject":..}`.
//!
//! The answer: `200` with `{"active": true|false, "principal": "..",
//! "scope": "a b" | ["a","b"], "expires_in": seconds | "exp": epoch seconds,
//! "context": {"name": value}, "www_authenticate": ".."}`; a `401` or `403`
//! answer refuses too (its `WWW-Authenticate` is relayed). Anything else, or
//! no answer within `timeout`, fails closed: 503 (or 401 with
//! `on_error = "unauthorized"`), decision `authentication.authorizerUnavailable`.
//!
//! An active answer becomes the request's claims: `sub` = principal,
//! `scope` = the scopes (route authorization reads them), and every context
//! value by its name, so `${request.auth[NAME]}` in a header template (and
//! a later routing selector) reads a context value or the principal (`sub`).
//!
//! The step is synchronous: a cached answer (per worker, keyed by the
//! question's exact bytes, until the answer's expiry or
//! `max_cache_duration`) is applied at once; otherwise it returns
//! [`Step::Await`] and the connection loop makes the call on the worker's
//! own runtime and pool ([`crate::proxy::side_call`]), hands the outcome
//! over ([`super::remote::RemoteAuth::deliver`]) and plans the request
//! again.

use super::remote::{apply, compile_call, known, RemoteCall};
use crate::config::{Authentication, HttpAuthorizer};
use crate::policy::{Question, RequestCtx, Step};
use crate::telemetry::format::write_json_str as write_json_escaped;
use std::cell::RefCell;

/// One request part sent to the authorizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Header(Box<str>),
    Query(Box<str>),
    Path,
    Method,
    ClientAddress,
    ClientCertificateSubject,
}

/// A deployment's compiled HTTP authorizer.
#[derive(Debug)]
pub struct Authorizer {
    pub call: RemoteCall,
    pub parts: Box<[Part]>,
}

/// Compiles `authentication` of `type = "http_authorizer"`; errors are
/// `(key, message)` relative to the `authentication` table.
pub fn compile(
    config: &Authentication,
    warnings: &mut Vec<String>,
) -> Result<Authorizer, (String, String)> {
    super::remote::refuse_jwt_keys(config)?;
    let a: &HttpAuthorizer = config.authorizer.as_ref().ok_or_else(|| {
        (
            "authorizer".to_string(),
            "type = \"http_authorizer\" needs an `authorizer` table".to_string(),
        )
    })?;
    let mut parts = Vec::with_capacity(a.parameters.len());
    for (i, p) in a.parameters.iter().enumerate() {
        let named = |prefix: &str| p.strip_prefix(prefix).filter(|n| !n.is_empty());
        parts.push(match p.as_str() {
            "path" => Part::Path,
            "method" => Part::Method,
            "client_address" => Part::ClientAddress,
            "client_certificate_subject" => Part::ClientCertificateSubject,
            _ => match (named("header:"), named("query:")) {
                (Some(h), _) if crate::http::fields::is_token(h.as_bytes()) => {
                    Part::Header(h.to_ascii_lowercase().into())
                }
                (_, Some(q)) => Part::Query(q.into()),
                _ => return Err((
                    format!("authorizer.parameters[{i}]"),
                    format!("`{p}` is not header:NAME, query:NAME, path, method, client_address or client_certificate_subject"),
                )),
            },
        });
    }
    let call = compile_call(
        "authorizer",
        &a.url,
        a.timeout.as_deref(),
        a.max_cache_duration.as_deref(),
        a.cache_size,
        a.on_error,
        "application/json",
        None,
        warnings,
    )?;
    Ok(Authorizer {
        call,
        parts: parts.into(),
    })
}

thread_local! {
    /// The question of the request at hand, built in place (no allocation
    /// per request once warm).
    static QUESTION: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The authentication step: a known answer applies now; otherwise the chain
/// waits for a call ([`Step::Await`]).
pub fn check(authorizer: &Authorizer, cx: &mut RequestCtx<'_, '_, '_>) -> Step {
    QUESTION.with(|q| {
        let mut question = q.borrow_mut();
        question.clear();
        write_question(authorizer, cx, &mut question);
        match known(&authorizer.call, &question) {
            Some(outcome) => apply(&authorizer.call, outcome, cx),
            None => Step::Await(Question {
                deployment: cx.deployment,
                key: question.clone(),
                body: question.clone(),
            }),
        }
    })
}

/// Appends `bytes` as a JSON string: copied as they are when they need no
/// escape (the common case: a token, a path), else escaped.
fn write_json_str(out: &mut Vec<u8>, bytes: &[u8]) {
    // Branch-free over every byte, so that it vectorises.
    let needs_escape = bytes.iter().fold(false, |any, &b| {
        any | !(0x20..0x7f).contains(&b) | (b == b'"') | (b == b'\\')
    });
    let plain = !needs_escape;
    if plain {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        write_json_escaped(out, bytes);
    }
}

/// Starts member `name` of the question object (`out` holds its `{`).
fn member(out: &mut Vec<u8>, name: &[u8]) {
    if out.len() > 1 {
        out.push(b',');
    }
    write_json_str(out, name);
    out.push(b':');
}

/// A JSON string, or `null`.
fn text(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => write_json_str(out, v),
        None => out.extend_from_slice(b"null"),
    }
}

/// Writes member `key` as an object of `names` and their values (`null`
/// when absent); nothing when there are no names.
fn write_object<'n, 'v>(
    out: &mut Vec<u8>,
    key: &[u8],
    names: impl Iterator<Item = &'n str>,
    value: impl Fn(&str) -> Option<&'v [u8]>,
) {
    let mut any = false;
    for name in names {
        if any {
            out.push(b',');
        } else {
            member(out, key);
            out.push(b'{');
            any = true;
        }
        write_json_str(out, name.as_bytes());
        out.push(b':');
        text(out, value(name));
    }
    if any {
        out.push(b'}');
    }
}

/// Writes the JSON question for this request into `out` (empty).
fn write_question(authorizer: &Authorizer, cx: &RequestCtx<'_, '_, '_>, out: &mut Vec<u8>) {
    let head = cx.head;
    out.push(b'{');
    let headers = authorizer.parts.iter().filter_map(|p| match p {
        Part::Header(h) => Some(&**h),
        _ => None,
    });
    write_object(out, b"headers", headers, |name| {
        let field = head
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name));
        field.map(|h| crate::http::fields::trim_ows(h.value))
    });
    let params = authorizer.parts.iter().filter_map(|p| match p {
        Part::Query(q) => Some(&**q),
        _ => None,
    });
    write_object(out, b"query", params, |name| {
        let query = head.query?;
        crate::http::query::values(query, name)
            .next()
            .map(str::as_bytes)
    });
    for part in authorizer.parts.iter() {
        match part {
            Part::Method => {
                member(out, b"method");
                text(out, Some(head.method.as_bytes()));
            }
            Part::Path => {
                member(out, b"path");
                text(out, Some(head.path.as_bytes()));
            }
            Part::ClientAddress => {
                member(out, b"client_address");
                let mut buf = [0u8; 48];
                let len = {
                    use std::io::Write;
                    let mut w = &mut buf[..];
                    let _ = write!(w, "{}", cx.client);
                    48 - w.len()
                };
                text(out, Some(&buf[..len]));
            }
            Part::ClientCertificateSubject => {
                member(out, b"client_certificate_subject");
                text(out, cx.tls_subject.map(str::as_bytes));
            }
            Part::Header(_) | Part::Query(_) => {}
        }
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    // The plain-copy path writes what the escaping writer writes.
    #[test]
    fn json_strings_match_the_escaping_writer() {
        for text in ["Bearer eyJ.abc-_~", "a\"b", "back\\slash", "tab\there", "é"] {
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            write_json_str(&mut fast, text.as_bytes());
            write_json_escaped(&mut slow, text.as_bytes());
            assert_eq!(fast, slow, "{text}");
        }
    }
}
