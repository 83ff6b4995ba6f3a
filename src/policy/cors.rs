//! CORS (request phase after network rules, before authentication): the
//! gateway answers a preflight `OPTIONS` itself (the back end never sees it)
//! and adds the `Access-Control-*` fields to the answers of cross-origin
//! calls. An origin that is not allowed gets no CORS fields at all, so the
//! browser blocks the call.
//!
//! Compiled once per snapshot (route `cors` wins over the deployment's);
//! pure: reads the request head, writes field lines into a buffer.

use crate::config::Cors;
use crate::http::request::RequestHead;

/// A compiled `cors` table.
#[derive(Debug, Clone)]
pub struct CorsPolicy {
    any_origin: bool,
    origins: Box<[Box<str>]>,
    any_method: bool,
    methods: Box<[Box<str>]>,
    /// `Access-Control-Allow-Methods` value.
    methods_value: Box<str>,
    any_header: bool,
    /// Lower-case allowed request header names.
    headers: Box<[Box<str>]>,
    /// `Access-Control-Expose-Headers` value, if any.
    exposed: Option<Box<str>>,
    credentials: bool,
    max_age: Option<u32>,
}

impl CorsPolicy {
    /// Compiles a `cors` table; errors are `(key, message)` relative to it.
    pub fn compile(config: &Cors) -> Result<CorsPolicy, (String, String)> {
        if config.allowed_origins.is_empty() {
            return Err((
                "allowed_origins".into(),
                "at least one origin (or \"*\") is needed".into(),
            ));
        }
        for (i, origin) in config.allowed_origins.iter().enumerate() {
            let ok = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.ends_with('/')
                    && origin.bytes().all(|b| b.is_ascii_graphic()));
            if !ok {
                return Err((
                    format!("allowed_origins[{i}]"),
                    format!("`{origin}` is not an origin like https://app.example.com (no path) or \"*\""),
                ));
            }
        }
        let token_list = |list: &[String], key: &str| -> Result<(), (String, String)> {
            for (i, item) in list.iter().enumerate() {
                if item != "*" && !crate::http::fields::is_token(item.as_bytes()) {
                    return Err((format!("{key}[{i}]"), format!("`{item}` is not a token")));
                }
            }
            Ok(())
        };
        token_list(&config.allowed_methods, "allowed_methods")?;
        token_list(&config.allowed_headers, "allowed_headers")?;
        token_list(&config.exposed_headers, "exposed_headers")?;
        let methods: Vec<Box<str>> = if config.allowed_methods.is_empty() {
            vec!["GET".into(), "HEAD".into(), "POST".into()]
        } else {
            config
                .allowed_methods
                .iter()
                .map(|m| m.as_str().into())
                .collect()
        };
        let any_method = methods.iter().any(|m| &**m == "*");
        Ok(CorsPolicy {
            any_origin: config.allowed_origins.iter().any(|o| o == "*"),
            origins: config
                .allowed_origins
                .iter()
                .map(|o| o.as_str().into())
                .collect(),
            any_method,
            methods_value: methods.join(", ").into(),
            methods: methods.into(),
            any_header: config.allowed_headers.iter().any(|h| h == "*"),
            headers: config
                .allowed_headers
                .iter()
                .map(|h| h.to_ascii_lowercase().into())
                .collect(),
            exposed: (!config.exposed_headers.is_empty())
                .then(|| config.exposed_headers.join(", ").into()),
            credentials: config.is_allow_credentials_enabled,
            max_age: config.max_age_in_seconds,
        })
    }

    fn origin_allowed(&self, origin: &[u8]) -> bool {
        self.any_origin || self.origins.iter().any(|o| o.as_bytes() == origin)
    }

    fn method_allowed(&self, method: &[u8]) -> bool {
        self.any_method || self.methods.iter().any(|m| m.as_bytes() == method)
    }

    fn headers_allowed(&self, requested: &[u8]) -> bool {
        self.any_header
            || crate::http::fields::list_elements(requested).all(|name| {
                self.headers
                    .iter()
                    .any(|h| h.as_bytes().eq_ignore_ascii_case(name))
            })
    }

    fn write_origin(&self, origin: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(b"Access-Control-Allow-Origin: ");
        if self.any_origin && !self.credentials {
            out.extend_from_slice(b"*\r\n");
        } else {
            out.extend_from_slice(origin);
            out.extend_from_slice(b"\r\nVary: Origin\r\n");
        }
        if self.credentials {
            out.extend_from_slice(b"Access-Control-Allow-Credentials: true\r\n");
        }
    }

    /// The fields of the gateway's answer to a preflight; nothing when the
    /// origin, method or headers are not allowed.
    pub fn write_preflight(&self, preflight: &Preflight<'_>, out: &mut Vec<u8>) {
        if !self.origin_allowed(preflight.origin)
            || !self.method_allowed(preflight.method)
            || !preflight.headers.is_none_or(|h| self.headers_allowed(h))
        {
            return;
        }
        self.write_origin(preflight.origin, out);
        out.extend_from_slice(b"Access-Control-Allow-Methods: ");
        if self.any_method {
            out.extend_from_slice(preflight.method);
        } else {
            out.extend_from_slice(self.methods_value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(requested) = preflight.headers.filter(|h| !h.is_empty()) {
            out.extend_from_slice(b"Access-Control-Allow-Headers: ");
            out.extend_from_slice(requested);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(age) = self.max_age {
            out.extend_from_slice(b"Access-Control-Max-Age: ");
            out.extend_from_slice(itoa::Buffer::new().format(age).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The fields added to the answer of a cross-origin call from `origin`
    /// (nothing when the origin is not allowed).
    pub fn write_actual(&self, origin: &[u8], out: &mut Vec<u8>) {
        if !self.origin_allowed(origin) {
            return;
        }
        self.write_origin(origin, out);
        if let Some(exposed) = &self.exposed {
            out.extend_from_slice(b"Access-Control-Expose-Headers: ");
            out.extend_from_slice(exposed.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// A CORS preflight request's questions.
#[derive(Debug, Clone, Copy)]
pub struct Preflight<'b> {
    pub origin: &'b [u8],
    /// `Access-Control-Request-Method`.
    pub method: &'b [u8],
    /// `Access-Control-Request-Headers`, if sent.
    pub headers: Option<&'b [u8]>,
}

/// The request's `Origin`, if any.
pub fn origin<'b>(head: &RequestHead<'_, 'b>) -> Option<&'b [u8]> {
    field(head, "origin")
}

/// The preflight questions, when the request is a preflight (`OPTIONS` with
/// `Origin` and `Access-Control-Request-Method`).
pub fn preflight<'b>(head: &RequestHead<'_, 'b>) -> Option<Preflight<'b>> {
    if head.method != "OPTIONS" {
        return None;
    }
    Some(Preflight {
        origin: origin(head)?,
        method: field(head, "access-control-request-method")?,
        headers: field(head, "access-control-request-headers"),
    })
}

fn field<'b>(head: &RequestHead<'_, 'b>, name: &str) -> Option<&'b [u8]> {
    head.headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| crate::http::fields::trim_ows(h.value))
}

/// Whether a back-end response field is one the gateway's CORS policy owns
/// (dropped from the back end's answer when the gateway adds its own).
pub fn is_cors_field(name: &str) -> bool {
    name.len() > 15 && name[..15].eq_ignore_ascii_case("access-control-")
}

/// The CORS step of the chain: a preflight (one the route answers) gets the
/// gateway's own answer; any other request gets the CORS fields for its
/// origin, and the back end's own `Access-Control-*` fields are dropped.
pub fn check(
    policy: &CorsPolicy,
    cx: &mut super::RequestCtx<'_, '_, '_>,
    preflight: Option<&Preflight<'_>>,
) -> super::Step {
    if preflight.is_some() {
        return super::Step::Answer(super::Answer::Preflight);
    }
    cx.extras.cors_owned = true;
    if let Some(origin) = origin(cx.head) {
        policy.write_actual(origin, &mut cx.extras.cors_fields);
    }
    super::Step::Continue
}

/// Appends the gateway's `204 No Content` answer to a preflight: `fields`
/// (request id, security headers) and the CORS fields when allowed.
pub fn write_preflight_answer(
    out: &mut Vec<u8>,
    policy: &CorsPolicy,
    preflight: &Preflight<'_>,
    fields: &[u8],
    persistence: crate::http::respond::Persistence,
) {
    crate::http::respond::write_status_line(out, 204, "No Content");
    crate::http::date::write_date_field(out);
    out.extend_from_slice(fields);
    policy.write_preflight(preflight, out);
    persistence.write_field(out);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(credentials: bool) -> CorsPolicy {
        CorsPolicy::compile(&Cors {
            allowed_origins: vec!["https://app.test".into()],
            allowed_methods: vec!["GET".into(), "PUT".into()],
            allowed_headers: vec!["Authorization".into()],
            exposed_headers: vec!["X-Trace".into()],
            is_allow_credentials_enabled: credentials,
            max_age_in_seconds: Some(600),
        })
        .unwrap()
    }

    fn preflight_fields(
        p: &CorsPolicy,
        origin: &[u8],
        method: &[u8],
        headers: Option<&[u8]>,
    ) -> String {
        let mut out = Vec::new();
        p.write_preflight(
            &Preflight {
                origin,
                method,
                headers,
            },
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    // An allowed preflight gets origin, methods, headers and max age; a foreign origin nothing.
    #[test]
    fn preflight_allowed_and_refused() {
        let p = policy(true);
        assert_eq!(
            (
                preflight_fields(&p, b"https://app.test", b"PUT", Some(b"authorization")),
                preflight_fields(&p, b"https://evil.test", b"PUT", None),
                preflight_fields(&p, b"https://app.test", b"DELETE", None),
                preflight_fields(&p, b"https://app.test", b"GET", Some(b"x-other")),
            ),
            (
                "Access-Control-Allow-Origin: https://app.test\r\nVary: Origin\r\nAccess-Control-Allow-Credentials: true\r\nAccess-Control-Allow-Methods: GET, PUT\r\nAccess-Control-Allow-Headers: authorization\r\nAccess-Control-Max-Age: 600\r\n".to_string(),
                String::new(),
                String::new(),
                String::new(),
            )
        );
    }

    // An origin with a path is refused at compile time.
    #[test]
    fn origin_with_path_refused() {
        let mut c = Cors {
            allowed_origins: vec!["https://a.test/".into()],
            allowed_methods: vec![],
            allowed_headers: vec![],
            exposed_headers: vec![],
            is_allow_credentials_enabled: false,
            max_age_in_seconds: None,
        };
        assert!(CorsPolicy::compile(&c).is_err());
        c.allowed_origins = vec!["*".into()];
        assert!(CorsPolicy::compile(&c).is_ok());
    }
}
