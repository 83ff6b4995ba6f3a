//! Stock back ends: a fixed response (status, header fields, body) that the
//! gateway answers itself, prebuilt once per snapshot so that a request copies
//! bytes and formats nothing but `Date`, the request id and `Connection`.

use crate::http::fields::{is_token, is_valid_value};
use crate::http::respond::{write_content_length, write_status_line};
use crate::http::status::reason;
use std::collections::BTreeMap;

/// The keys of a `stock` back end, defaults applied.
#[derive(Debug, Clone)]
pub struct StockBackend {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A fixed response, prebuilt once per snapshot.
#[derive(Debug)]
pub struct StockSpec {
    pub status: u16,
    /// Status line and header fields (with Content-Length), without the blank line.
    pub head: Vec<u8>,
    /// The configured fields include a `Date` (else the gateway adds the current one).
    pub has_date: bool,
    pub body: Vec<u8>,
}

/// Prebuilds a stock response. Errors are (key, message).
pub fn compile_stock(config: &StockBackend) -> Result<StockSpec, (&'static str, String)> {
    if !(200..=599).contains(&config.status) {
        return Err((
            "status",
            format!("stock status {} must be between 200 and 599", config.status),
        ));
    }
    let body_allowed = !matches!(config.status, 204 | 304);
    if !body_allowed && !config.body.is_empty() {
        return Err((
            "body",
            format!("a {} response cannot have a body", config.status),
        ));
    }
    let mut head = Vec::new();
    write_status_line(&mut head, config.status, reason(config.status));
    for (name, value) in &config.headers {
        if !is_token(name.as_bytes()) || !is_valid_value(value.as_bytes()) {
            return Err((
                "headers",
                format!("invalid header `{name}` (a name is a token, a value has no control characters)"),
            ));
        }
        if crate::http::fields::is_hop_by_hop(name) {
            return Err((
                "headers",
                format!("header `{name}` is set by the gateway itself"),
            ));
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if body_allowed {
        write_content_length(&mut head, config.body.len() as u64);
    }
    Ok(StockSpec {
        status: config.status,
        head,
        has_date: config
            .headers
            .keys()
            .any(|n| n.eq_ignore_ascii_case("date")),
        body: config.body.clone().into_bytes(),
    })
}
