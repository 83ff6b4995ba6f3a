//! Header value templates: literal text with context variables, parsed once
//! at snapshot compile and rendered per request into a reused buffer.
//!
//! Variables: `${request.path[NAME]}` (route path parameter),
//! `${request.auth[CLAIM]}` (verified JWT claim), `${request.headers[NAME]}`,
//! `${request.query[NAME]}` (raw, as sent), `${subscriber.name}` (usage plans;
//! empty until a subscriber is known). A missing value renders empty; control
//! characters from claims are dropped so a value can never break the head.
//! A value given as a secret by reference is one [`Part::Secret`], checked
//! once at compile and written as it is.

use crate::config::Secret;
use crate::http::request::RequestHead;
use crate::policy::auth::Claims;
use crate::route::table::Params;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(Box<str>),
    PathParam(Box<str>),
    Claim(Box<str>),
    Header(Box<str>),
    Query(Box<str>),
    Subscriber,
    /// A secret by reference, written as it is (prints as `<secret>`).
    Secret(Secret),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub parts: Box<[Part]>,
}

/// What a template may read about the request.
pub struct TemplateContext<'a> {
    pub head: &'a RequestHead<'a, 'a>,
    pub params: &'a Params<'a, 'a>,
    pub claims: Option<&'a Claims>,
    /// The usage-plan subscriber, once usage plans know it.
    pub subscriber: Option<&'a str>,
}

impl Template {
    /// Parses `text`; `path_params` are the route's parameter names.
    pub fn parse(text: &str, path_params: &[String]) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(literal(&rest[..start])?);
            }
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{text}`"))?
                + start;
            parts.push(variable(&rest[start + 2..end], path_params)?);
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(literal(rest)?);
        }
        Ok(Template {
            parts: parts.into(),
        })
    }

    /// A template that is one secret value, taken as it is. The error never
    /// shows the value.
    pub fn secret(secret: Secret) -> Result<Template, String> {
        if !crate::http::fields::is_valid_value(secret.expose().as_bytes()) {
            return Err("the secret holds characters a header value cannot".into());
        }
        Ok(Template {
            parts: Box::new([Part::Secret(secret)]),
        })
    }

    /// Appends the rendered value.
    pub fn render(&self, cx: &TemplateContext<'_>, out: &mut Vec<u8>) {
        for part in self.parts.iter() {
            match part {
                Part::Literal(text) => out.extend_from_slice(text.as_bytes()),
                Part::PathParam(name) => {
                    push_clean(out, cx.params.get(name).unwrap_or("").as_bytes())
                }
                Part::Claim(name) => {
                    if let Some(value) = cx.claims.and_then(|c| c.text(name)) {
                        push_clean(out, value.as_bytes());
                    }
                }
                Part::Header(name) => {
                    if let Some(h) = cx
                        .head
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                    {
                        push_clean(out, crate::http::fields::trim_ows(h.value));
                    }
                }
                Part::Query(name) => {
                    let value = cx
                        .head
                        .query
                        .and_then(|q| crate::http::query::values(q, name).next());
                    push_clean(out, value.unwrap_or("").as_bytes());
                }
                Part::Subscriber => push_clean(out, cx.subscriber.unwrap_or("").as_bytes()),
                Part::Secret(secret) => out.extend_from_slice(secret.expose().as_bytes()),
            }
        }
    }
}

fn literal(text: &str) -> Result<Part, String> {
    if !crate::http::fields::is_valid_value(text.as_bytes()) {
        return Err(format!("`{text}` holds characters a header value cannot"));
    }
    Ok(Part::Literal(text.into()))
}

fn variable(name: &str, path_params: &[String]) -> Result<Part, String> {
    if name == "subscriber.name" {
        return Ok(Part::Subscriber);
    }
    let indexed = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
            .filter(|key| !key.is_empty())
    };
    if let Some(key) = indexed("request.path") {
        if !path_params.iter().any(|p| p == key) {
            return Err(format!(
                "`${{{name}}}`: the route has no path parameter `{key}`"
            ));
        }
        return Ok(Part::PathParam(key.into()));
    }
    if let Some(key) = indexed("request.auth") {
        return Ok(Part::Claim(key.into()));
    }
    if let Some(key) = indexed("request.headers") {
        return Ok(Part::Header(key.into()));
    }
    if let Some(key) = indexed("request.query") {
        return Ok(Part::Query(key.into()));
    }
    Err(format!(
        "unknown variable `${{{name}}}` (known: request.path[..], request.auth[..], request.headers[..], request.query[..], subscriber.name)"
    ))
}

/// Appends `bytes` without control characters (tab kept).
fn push_clean(out: &mut Vec<u8>, bytes: &[u8]) {
    if crate::http::fields::is_valid_value(bytes) {
        out.extend_from_slice(bytes);
    } else {
        out.extend(
            bytes
                .iter()
                .filter(|&&b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Literals and variables split as written; an unknown variable or path parameter is refused.
    #[test]
    fn parse_rules() {
        let t = Template::parse("id=${request.path[id]};${subscriber.name}", &["id".into()]);
        assert_eq!(
            (
                t.map(|t| t.parts.len()),
                Template::parse("${request.nope}", &[]).is_err(),
                Template::parse("${request.path[x]}", &[]).is_err(),
                Template::parse("${request.auth[sub]", &[]).is_err(),
            ),
            (Ok(4), true, true, true)
        );
    }
}
