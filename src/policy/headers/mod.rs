//! Header transformations of a route, on the request the back end receives
//! (`request_headers`) and on the response the client receives
//! (`response_headers`): `remove` (block list) or `keep_only` (allow list),
//! then `rename`, then `set` (overwrite, append, or skip if present), with
//! [`template`] values or secrets by reference (`{ env = .. }`, `{ file = .. }`,
//! read at each compile, so a reload picks up a changed file).
//!
//! Compiled once per snapshot. Headers the gateway owns (framing,
//! hop-by-hop, `Host`, the forwarding headers, `X-Request-Id`) cannot be
//! touched: compile refuses a config that tries, so `portcullis check` does.
//! Applied by [`crate::proxy::rewrite`] while it writes each head.

pub mod edits;
pub mod template;

pub use edits::{RenderedValues, ResponseEdits};
pub use template::{Template, TemplateContext};

use crate::config::{HeaderTransformConfig, IfExists, SecretSource};
use crate::http::fields::is_token;

/// Header names only the gateway writes (lower case).
pub const GATEWAY_OWNED: [&str; 16] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-request-id",
];

/// Whether `name` is a header the gateway owns.
pub fn is_gateway_owned(name: &str) -> bool {
    GATEWAY_OWNED.iter().any(|o| o.eq_ignore_ascii_case(name))
}

/// One `set` rule.
#[derive(Debug, Clone)]
pub struct SetRule {
    pub name: Box<str>,
    pub value: Template,
    pub mode: IfExists,
}

/// The block or allow list.
#[derive(Debug, Clone, Default)]
pub enum Filter {
    #[default]
    None,
    Remove(Box<[Box<str>]>),
    KeepOnly(Box<[Box<str>]>),
}

/// A compiled `request_headers` or `response_headers` table.
#[derive(Debug, Clone, Default)]
pub struct HeaderTransform {
    pub filter: Filter,
    pub rename: Box<[(Box<str>, Box<str>)]>,
    pub set: Box<[SetRule]>,
}

/// What happens to one passing field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldAction<'t> {
    Keep,
    Drop,
    Rename(&'t str),
}

impl HeaderTransform {
    /// Compiles a transformation table; `path_params` are the route's
    /// parameter names. Errors are `(key, message)` relative to the table.
    pub fn compile(
        config: &HeaderTransformConfig,
        path_params: &[String],
    ) -> Result<HeaderTransform, (String, String)> {
        let name_ok = |key: String, name: &str| -> Result<Box<str>, (String, String)> {
            if !is_token(name.as_bytes()) {
                return Err((key, format!("`{name}` is not a header name")));
            }
            if is_gateway_owned(name) {
                return Err((
                    key,
                    format!("`{name}` is owned by the gateway and cannot be changed by a transformation"),
                ));
            }
            Ok(name.into())
        };
        let filter = match (&config.keep_only, config.remove.is_empty()) {
            (Some(_), false) => {
                return Err((
                    "keep_only".into(),
                    "give either remove or keep_only, not both".into(),
                ))
            }
            (Some(list), true) => {
                let mut names = Vec::with_capacity(list.len());
                for (i, n) in list.iter().enumerate() {
                    if !is_token(n.as_bytes()) {
                        return Err((
                            format!("keep_only[{i}]"),
                            format!("`{n}` is not a header name"),
                        ));
                    }
                    names.push(n.as_str().into());
                }
                Filter::KeepOnly(names.into())
            }
            (None, false) => Filter::Remove(
                config
                    .remove
                    .iter()
                    .enumerate()
                    .map(|(i, n)| name_ok(format!("remove[{i}]"), n))
                    .collect::<Result<_, _>>()?,
            ),
            (None, true) => Filter::None,
        };
        let mut rename = Vec::with_capacity(config.rename.len());
        for (i, r) in config.rename.iter().enumerate() {
            let from = name_ok(format!("rename[{i}].from"), &r.from)?;
            let to = name_ok(format!("rename[{i}].to"), &r.to)?;
            rename.push((from, to));
        }
        let mut set = Vec::with_capacity(config.set.len());
        for (i, s) in config.set.iter().enumerate() {
            let key = || format!("set[{i}].value");
            let value = match &s.value {
                None => Err("a `set` entry needs a `value`".to_string()),
                Some(SecretSource::Inline(text)) => Template::parse(text, path_params),
                // Loading made a file path absolute.
                Some(source) => source
                    .resolve_in(std::path::Path::new("."))
                    .and_then(Template::secret),
            }
            .map_err(|m| (key(), m))?;
            set.push(SetRule {
                name: name_ok(format!("set[{i}].name"), &s.name)?,
                value,
                mode: s.if_exists,
            });
        }
        Ok(HeaderTransform {
            filter,
            rename: rename.into(),
            set: set.into(),
        })
    }

    /// The action for a field the gateway would otherwise pass unchanged.
    pub fn action(&self, name: &str) -> FieldAction<'_> {
        let listed = |list: &[Box<str>]| list.iter().any(|n| n.eq_ignore_ascii_case(name));
        match &self.filter {
            Filter::Remove(list) if listed(list) => return FieldAction::Drop,
            Filter::KeepOnly(list) if !listed(list) => return FieldAction::Drop,
            _ => {}
        }
        let (action, final_name) = match self
            .rename
            .iter()
            .find(|(from, _)| from.eq_ignore_ascii_case(name))
        {
            Some((_, to)) => (FieldAction::Rename(to), &**to),
            None => (FieldAction::Keep, name),
        };
        let overwritten = self
            .set
            .iter()
            .any(|s| s.mode == IfExists::Overwrite && s.name.eq_ignore_ascii_case(final_name));
        if overwritten {
            FieldAction::Drop
        } else {
            action
        }
    }

    /// Writes the `set` fields; `source` are the message's fields as received
    /// (for `skip`: is the field there after filtering and renaming?), and
    /// `value(i, out)` appends rule `i`'s value.
    pub fn write_sets(
        &self,
        out: &mut Vec<u8>,
        source: &[httparse::Header<'_>],
        mut value: impl FnMut(usize, &mut Vec<u8>),
    ) {
        for (i, rule) in self.set.iter().enumerate() {
            if rule.mode == IfExists::Skip && self.present_after(source, &rule.name) {
                continue;
            }
            out.extend_from_slice(rule.name.as_bytes());
            out.extend_from_slice(b": ");
            value(i, out);
            out.extend_from_slice(b"\r\n");
        }
    }

    fn present_after(&self, source: &[httparse::Header<'_>], name: &str) -> bool {
        source.iter().any(|h| match self.action(h.name) {
            FieldAction::Keep => h.name.eq_ignore_ascii_case(name),
            FieldAction::Rename(to) => to.eq_ignore_ascii_case(name),
            FieldAction::Drop => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RenameHeader, SetHeader};

    fn compile(config: HeaderTransformConfig) -> Result<HeaderTransform, (String, String)> {
        HeaderTransform::compile(&config, &[])
    }

    // A transformation that touches a gateway-owned header is refused, naming the key.
    #[test]
    fn owned_headers_refused() {
        let set_host = HeaderTransformConfig {
            set: vec![SetHeader {
                name: "Host".into(),
                value: Some(crate::config::SecretSource::Inline("x".into())),
                if_exists: IfExists::Overwrite,
            }],
            ..Default::default()
        };
        let rename_xff = HeaderTransformConfig {
            rename: vec![RenameHeader {
                from: "X-Forwarded-For".into(),
                to: "X-Client".into(),
            }],
            ..Default::default()
        };
        let remove_cl = HeaderTransformConfig {
            remove: vec!["content-length".into()],
            ..Default::default()
        };
        assert_eq!(
            [set_host, rename_xff, remove_cl].map(|c| compile(c).err().map(|e| e.0)),
            [
                Some("set[0].name".to_string()),
                Some("rename[0].from".to_string()),
                Some("remove[0]".to_string())
            ]
        );
    }

    // Filter, then rename, then overwrite decide a field's fate.
    #[test]
    fn field_actions() {
        let t = compile(HeaderTransformConfig {
            remove: vec!["X-Secret".into()],
            rename: vec![RenameHeader {
                from: "X-Old".into(),
                to: "X-New".into(),
            }],
            set: vec![SetHeader {
                name: "X-Mode".into(),
                value: Some(crate::config::SecretSource::Inline("gw".into())),
                if_exists: IfExists::Overwrite,
            }],
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            ["x-secret", "x-old", "x-mode", "accept"].map(|n| t.action(n)),
            [
                FieldAction::Drop,
                FieldAction::Rename("X-New"),
                FieldAction::Drop,
                FieldAction::Keep
            ]
        );
    }
}
