//! Header value templates: literal text with context variables, parsed once
//! at snapshot compile and rendered per request into a reused buffer.
//!
//! Variables are `${SOURCE}` with the sources of
//! [`crate::route::selector`] (`${request.path[NAME]}`, `${request.auth[NAME]}`,
//! `${request.headers[NAME]}`, `${request.query[NAME]}` (raw, as sent),
//! `${request.host}`, `${subscriber.name}`, `${request.usage_plan}`). A missing
//! value renders empty; control characters are dropped so a value can never
//! break the head. A value given as a secret by reference is one
//! [`Part::Secret`], checked once at compile and written as it is.

use crate::config::Secret;
use crate::http::request::RequestHead;
use crate::policy::auth::Claims;
use crate::route::selector::{parse_source, Source};
use crate::route::table::Params;
use std::borrow::Cow;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Literal(Box<str>),
    Variable(Source),
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
    /// The usage plan that admitted the request.
    pub usage_plan: Option<&'a str>,
}

impl<'a> TemplateContext<'a> {
    /// The request's value for `source`, if it has one (bytes as sent:
    /// header values need not be UTF-8).
    pub fn value(&self, source: &Source) -> Option<Cow<'_, [u8]>> {
        let borrowed = |s: &'a str| Cow::Borrowed(s.as_bytes());
        match source {
            Source::PathParam(name) => self.params.get(name).map(borrowed),
            Source::Auth(name) => self.claims.and_then(|c| c.text(name)).map(|t| match t {
                Cow::Borrowed(t) => Cow::Borrowed(t.as_bytes()),
                Cow::Owned(t) => Cow::Owned(t.into_bytes()),
            }),
            Source::Header(name) => self
                .head
                .headers
                .iter()
                .find(|h| crate::http::fields::same_name(h.name, name))
                .map(|h| Cow::Borrowed(crate::http::fields::trim_ows(h.value))),
            Source::Query(name) => self
                .head
                .query
                .and_then(|q| crate::http::query::values(q, name).next())
                .map(borrowed),
            Source::Host => self.head.host.map(|host| {
                if host.iter().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(host.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(host)
                }
            }),
            Source::Subscriber => self.subscriber.map(borrowed),
            Source::UsagePlan => self.usage_plan.map(borrowed),
        }
    }
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
                Part::Variable(source) => {
                    if let Some(value) = cx.value(source) {
                        push_clean(out, &value);
                    }
                }
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
    parse_source(name, path_params)
        .map(Part::Variable)
        .map_err(|e| format!("`${{{name}}}`: {e}"))
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
