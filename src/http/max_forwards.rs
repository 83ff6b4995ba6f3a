//! `Max-Forwards` (RFC 9110 §7.6.2): on OPTIONS and TRACE, each intermediary
//! checks the field before forwarding: at 0 it answers as the final
//! recipient, above 0 it forwards the value decremented by one. Other
//! methods ignore the field (and forward it unchanged). A field whose value
//! is not a decimal number is ignored too (and passes unchanged); when there
//! are several, the first valid one counts.
//!
//! Also the echo of a TRACE request ([`write_trace_echo`]), which the gateway
//! sends when it is the final recipient.

use super::request::RequestHead;
use super::Version;
use crate::http::fields::is_named;

/// The methods `Max-Forwards` applies to.
pub fn applies(method: &str) -> bool {
    method == "OPTIONS" || method == "TRACE"
}

/// True for the `Max-Forwards` field name.
pub fn is_field(name: &str) -> bool {
    is_named(name, "max-forwards")
}

/// The forwards left for an OPTIONS or TRACE request that carries a valid
/// `Max-Forwards`; None for other methods or without one. Values beyond
/// `u32::MAX` count as `u32::MAX`.
pub fn remaining(head: &RequestHead<'_, '_>) -> Option<u32> {
    if !applies(head.method) {
        return None;
    }
    head.headers
        .iter()
        .filter(|h| is_field(h.name))
        .find_map(|h| parse(h.value))
}

/// `1*DIGIT`, saturating at `u32::MAX`.
fn parse(value: &[u8]) -> Option<u32> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u32, |n, d| {
        n.saturating_mul(10).saturating_add(u32::from(d - b'0'))
    }))
}

/// Appends the field a forwarded request carries when it came with `received`
/// forwards left (at least 1): one fewer.
pub fn write_decremented(out: &mut Vec<u8>, received: u32) {
    out.extend_from_slice(b"Max-Forwards: ");
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(digits.format(received.saturating_sub(1)).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends a TRACE answer's `message/http` body: the request line and the
/// header fields as received, except the query string (tokens travel there)
/// and every field `hidden` names (credentials: cross-site tracing must not
/// read them back).
pub fn write_trace_echo(
    out: &mut Vec<u8>,
    head: &RequestHead<'_, '_>,
    hidden: impl Fn(&str) -> bool,
) {
    out.extend_from_slice(head.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.path.as_bytes());
    out.extend_from_slice(match head.version {
        Version::Http10 => b" HTTP/1.0\r\n",
        Version::Http11 => b" HTTP/1.1\r\n",
    });
    for field in head.headers.iter().filter(|f| !hidden(f.name)) {
        out.extend_from_slice(field.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(field.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Fields a TRACE echo never shows, whatever the route: credentials.
pub fn is_credential_field(name: &str) -> bool {
    ["authorization", "proxy-authorization", "cookie"]
        .iter()
        .any(|c| name.eq_ignore_ascii_case(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Rule: the value is 1*DIGIT (surrounding whitespace allowed), saturating; anything else is ignored.
    #[test]
    fn values_parse_as_decimal_or_not_at_all() {
        assert_eq!(
            [
                parse(b"0"),
                parse(b" 7 "),
                parse(b"99999999999"),
                parse(b"-1"),
                parse(b"1e3"),
                parse(b""),
            ],
            [Some(0), Some(7), Some(u32::MAX), None, None, None]
        );
    }

    // Rule: the forwarded field carries one fewer.
    #[test]
    fn forwarded_value_is_decremented() {
        let mut out = Vec::new();
        write_decremented(&mut out, 5);
        assert_eq!(out, b"Max-Forwards: 4\r\n");
    }
}
