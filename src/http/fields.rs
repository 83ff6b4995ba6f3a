//! Small checks and helpers on header field names and values shared by the
//! request and response parsers and the head rewriters.

/// True for bytes allowed in a `token` (RFC 9110 §5.6.2).
pub fn is_token_byte(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' |
        b'^' | b'_' | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// True when `s` is a non-empty token.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_byte(b))
}

/// True when every byte of a field value is HTAB, SP, VCHAR or obs-text
/// (no NUL, no CR, no LF, no other control byte).
pub fn is_valid_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Trims optional whitespace (SP / HTAB) from both ends.
pub fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// The non-empty, OWS-trimmed elements of a comma-separated list value.
pub fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Parses a Content-Length value: 1*DIGIT, no sign, no list, fits in u64.
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Hop-by-hop fields that a proxy never forwards (RFC 9110 §7.6.1), plus the
/// framing fields the gateway always writes itself.
pub fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "proxy-authorization",
        "transfer-encoding",
        "content-length",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// True when `name` is listed in any of the `Connection` header values.
pub fn named_by_connection(name: &str, connection_values: &[&[u8]]) -> bool {
    connection_values
        .iter()
        .flat_map(|v| list_elements(v))
        .any(|token| token.eq_ignore_ascii_case(name.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Content-Length accepts plain digits only.
    #[test]
    fn content_length_rejects_sign_and_lists() {
        assert_eq!(
            [
                "5",
                "+5",
                "-1",
                "5x",
                "",
                "1,2",
                " 5",
                "99999999999999999999"
            ]
            .map(|v| parse_content_length(v.as_bytes())),
            [Some(5), None, None, None, None, None, None, None]
        );
    }

    // A value with NUL or a bare CR is invalid; HTAB and obs-text are fine.
    #[test]
    fn value_checks_control_bytes() {
        assert_eq!(
            [&b"a\0b"[..], b"a\rb", b"a\tb\x80"].map(is_valid_value),
            [false, false, true]
        );
    }

    // List elements are trimmed and empty ones skipped.
    #[test]
    fn list_elements_trims() {
        assert_eq!(
            list_elements(b" gzip ,, chunked").collect::<Vec<_>>(),
            vec![&b"gzip"[..], b"chunked"]
        );
    }
}
