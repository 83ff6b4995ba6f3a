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

/// Whether two field names are the same (case-insensitive), trying the exact
/// spelling first: clients mostly send the spelling a config names, and a
/// byte comparison is a fraction of a case-folding one.
#[inline]
pub fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a == b || a.eq_ignore_ascii_case(b))
}

/// Whether the field name `name` is `lower` (case-insensitive), eight bytes
/// at a time. `lower` must be lowercase letters, digits and `-` (the names
/// the gateway looks for); `name` any bytes httparse accepts in a name or a
/// value: OR-ing 0x20 into such a byte gives one of those only when it is
/// that character in either case (CR, the one byte that would also give `-`,
/// never reaches here).
#[inline]
pub fn is_named(name: &str, lower: &str) -> bool {
    let (name, lower) = (name.as_bytes(), lower.as_bytes());
    debug_assert!(lower
        .iter()
        .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    if name.len() != lower.len() {
        return false;
    }
    const CASE: u64 = 0x2020_2020_2020_2020;
    // A fixed-size load (no `memcpy` call for the eight bytes).
    let word = |s: &[u8], at: usize| {
        s.get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_ne_bytes)
    };
    let n = name.len();
    if n < 8 {
        return name.iter().zip(lower).all(|(&a, &b)| a | 0x20 == b);
    }
    let mut at = 0;
    while at + 8 <= n {
        if word(name, at) | CASE != word(lower, at) {
            return false;
        }
        at += 8;
    }
    // The last, partial word: the final eight bytes again.
    at == n || word(name, n - 8) | CASE == word(lower, n - 8)
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
/// framing fields the gateway always writes itself. Dispatches on length first:
/// this runs for every header of every message.
pub fn is_hop_by_hop(name: &str) -> bool {
    let candidates: &[&str] = match name.len() {
        2 => &["te"],
        7 => &["trailer", "upgrade"],
        10 => &["connection", "keep-alive"],
        14 => &["content-length"],
        16 => &["proxy-connection"],
        17 => &["transfer-encoding"],
        19 => &["proxy-authorization"],
        _ => return false,
    };
    candidates.iter().any(|c| is_named(name, c))
}

/// True for a name with `_` that reads as a field the gateway sets or frames
/// by once `_` is taken for `-` (as CGI-style back ends do): forwarding it
/// would let a client shadow the gateway's own `X-Forwarded-*` or framing.
pub fn shadows_gateway_field(name: &str) -> bool {
    const GUARDED: [&str; 8] = [
        "content-length",
        "transfer-encoding",
        "host",
        "connection",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
    ];
    name.contains('_')
        && GUARDED.iter().any(|g| {
            g.len() == name.len()
                && g.bytes().zip(name.bytes()).all(|(g, n)| {
                    let n = if n == b'_' {
                        b'-'
                    } else {
                        n.to_ascii_lowercase()
                    };
                    g == n
                })
        })
}

/// Most field names one message's `Connection` headers may name (more are
/// refused by the request parser and ignored in responses).
pub const MAX_CONNECTION_TOKENS: usize = 8;

/// The field names a message's `Connection` headers list, other than `close`
/// and `keep-alive` (already hop-by-hop), collected once per message.
#[derive(Debug, Default)]
pub struct ConnectionTokens<'b> {
    tokens: [&'b [u8]; MAX_CONNECTION_TOKENS],
    len: usize,
}

impl<'b> ConnectionTokens<'b> {
    /// Collects the tokens of every `Connection` field in `headers`.
    pub fn collect(headers: &[httparse::Header<'b>]) -> Self {
        let mut found = ConnectionTokens::default();
        for header in headers {
            if is_named(header.name, "connection") {
                for token in list_elements(header.value) {
                    let plain = token.eq_ignore_ascii_case(b"close")
                        || token.eq_ignore_ascii_case(b"keep-alive");
                    if !plain && found.len < MAX_CONNECTION_TOKENS {
                        found.tokens[found.len] = token;
                        found.len += 1;
                    }
                }
            }
        }
        found
    }

    /// True when `name` is listed.
    pub fn names(&self, name: &str) -> bool {
        self.tokens[..self.len]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
    }
}

/// Appends the field line `name: value` and CRLF.
pub fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    // `is_named` agrees with a case-insensitive comparison for every length
    // and every position of a difference, and never takes `_`, space, TAB or
    // a byte over 0x7f for a letter or `-`.
    #[test]
    fn is_named_matches_case_insensitively_only() {
        let names = [
            "te",
            "date",
            "expect",
            "upgrade",
            "connection",
            "x-request-id",
            "content-length",
            "transfer-encoding",
            "proxy-authorization",
            "sec-websocket-version",
            "a1-b2-c3-d4-e5-f6-g7",
        ];
        for lower in names {
            assert!(is_named(lower, lower));
            assert!(is_named(&lower.to_ascii_uppercase(), lower));
            for at in 0..lower.len() {
                let mut mixed = lower.as_bytes().to_vec();
                mixed[at] = mixed[at].to_ascii_uppercase();
                assert!(is_named(std::str::from_utf8(&mixed).unwrap(), lower));
                for wrong in [b'_', b' ', b'\t', b'z', b'0', b'!', b'^', b'@', b'`'] {
                    let mut other = lower.as_bytes().to_vec();
                    if other[at] == wrong || other[at].to_ascii_lowercase() == wrong {
                        continue;
                    }
                    other[at] = wrong;
                    let other = std::str::from_utf8(&other).unwrap();
                    assert!(!is_named(other, lower), "{other:?} taken for {lower:?}");
                }
                let mut high = lower.to_string();
                high.replace_range(at..at + 1, "é");
                assert!(!is_named(&high, lower));
            }
            assert!(!is_named(&lower[1..], lower));
        }
    }

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

    // Hop-by-hop names match in any case; others never do.
    #[test]
    fn hop_by_hop_names() {
        assert_eq!(
            ["TE", "Transfer-Encoding", "keep-alive", "Trailers", "Host"].map(is_hop_by_hop),
            [true, true, true, false, false]
        );
    }

    // Underscored look-alikes of gateway fields are recognised.
    #[test]
    fn underscore_shadows() {
        assert_eq!(
            [
                "X_Forwarded_For",
                "Content_Length",
                "X_Custom",
                "X-Forwarded-For"
            ]
            .map(shadows_gateway_field),
            [true, true, false, false]
        );
    }

    // Connection tokens skip close and keep-alive.
    #[test]
    fn connection_tokens_skip_plain_options() {
        let headers = [httparse::Header {
            name: "Connection",
            value: b"close, X-Foo",
        }];
        let tokens = ConnectionTokens::collect(&headers);
        assert_eq!(
            (tokens.names("x-foo"), tokens.names("close")),
            (true, false)
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
