//! What a forwarded request's response needs from the request phase: the
//! `response_headers` values rendered while the request head was at hand,
//! the CORS field lines for the caller's origin, and the listener's security
//! headers. Built in [`crate::runtime::dispatch`]; read by
//! [`crate::proxy::rewrite::write_client_response`].

use super::{FieldAction, HeaderTransform};
use crate::policy::security_headers::SecurityHeaders;

/// Rendered `set` values, one per rule, in one buffer.
#[derive(Debug, Default)]
pub struct RenderedValues {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

impl RenderedValues {
    /// Renders every `set` value of `transform`.
    pub fn render(transform: &HeaderTransform, cx: &super::TemplateContext<'_>) -> RenderedValues {
        let mut values = RenderedValues::default();
        for rule in transform.set.iter() {
            rule.value.render(cx, &mut values.buf);
            values.ends.push(values.buf.len());
        }
        values
    }

    /// Value `i` (empty when absent).
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 {
            0
        } else {
            self.ends.get(i - 1).copied().unwrap_or(0)
        };
        let end = self.ends.get(i).copied().unwrap_or(start);
        self.buf.get(start..end).unwrap_or(&[])
    }
}

/// The owned part of a response's edits, carried from plan to response.
#[derive(Debug, Default)]
pub struct ResponseExtras {
    pub values: RenderedValues,
    /// CORS field lines for this caller (empty: none).
    pub cors_fields: Vec<u8>,
    /// The route has a CORS policy: the back end's own `Access-Control-*`
    /// fields are dropped.
    pub cors_owned: bool,
}

/// Everything that changes a back-end response head on its way to the client.
#[derive(Debug, Clone, Copy)]
pub struct ResponseEdits<'a> {
    pub transform: Option<&'a HeaderTransform>,
    pub extras: &'a ResponseExtras,
    pub security: &'a SecurityHeaders,
}

impl ResponseEdits<'_> {
    /// The name a back-end field goes out under, or None to drop it.
    pub fn field_name<'s>(&'s self, name: &'s str) -> Option<&'s str> {
        if self.security.drops(name)
            || (self.extras.cors_owned && crate::policy::cors::is_cors_field(name))
        {
            return None;
        }
        match self.transform.map(|t| t.action(name)) {
            Some(FieldAction::Drop) => None,
            Some(FieldAction::Rename(to)) => Some(to),
            _ => Some(name),
        }
    }

    /// Appends the fields the gateway adds: `set` values, CORS, security.
    pub fn write_added(&self, out: &mut Vec<u8>, source: &[httparse::Header<'_>]) {
        if let Some(t) = self.transform {
            t.write_sets(out, source, |i, out| {
                out.extend_from_slice(self.extras.values.get(i))
            });
        }
        out.extend_from_slice(&self.extras.cors_fields);
        out.extend_from_slice(&self.security.fields);
    }
}
