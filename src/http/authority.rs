//! The grammar of an authority as a client names it: the `Host` field value and
//! the authority of an absolute-form request target (RFC 9112 §3.2, RFC 3986
//! §3.2.2–3.2.3).
//!
//! Used by the request parser only. A value that breaks the grammar is a 400
//! (RFC 9112 §3.2: "a Host header field with an invalid field value"), because
//! the gateway repeats the client's authority to the back end in
//! `X-Forwarded-Host` and `Forwarded`, where it must be what it claims to be.

/// `uri-host [ ":" port ]`: a bracketed IP literal or a non-empty reg-name /
/// IPv4 address (unreserved, sub-delims and well-formed `%XX` only), then an
/// optional port of digits. No userinfo, no whitespace, no quotes.
pub fn is_valid_authority(value: &[u8]) -> bool {
    let (host_ok, rest) = match value.strip_prefix(b"[") {
        Some(literal) => match literal.iter().position(|&b| b == b']') {
            Some(end) => (is_ip_literal(&literal[..end]), &literal[end + 1..]),
            None => return false,
        },
        None => {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            (is_reg_name(&value[..end]), &value[end..])
        }
    };
    let port_ok = match rest.strip_prefix(b":") {
        Some(port) => port.iter().all(u8::is_ascii_digit),
        None => rest.is_empty(),
    };
    host_ok && port_ok
}

/// The inside of `[...]`: an IPv6 address or an `IPvFuture` (`v1.x`); the
/// characters are checked, not the address's structure.
fn is_ip_literal(inner: &[u8]) -> bool {
    !inner.is_empty() && inner.iter().all(|&b| is_host_byte(b) || b == b':')
}

/// A non-empty reg-name or IPv4 address (RFC 3986 §3.2.2); an `http` URI
/// with an empty host is invalid (RFC 9110 §4.2.1).
fn is_reg_name(host: &[u8]) -> bool {
    if host.is_empty() {
        return false;
    }
    // The common case, no escapes: one table look-up per byte.
    if host.iter().all(|&b| is_host_byte(b)) {
        return true;
    }
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b'%' => {
                let hex = |j: usize| host.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            }
            b if is_host_byte(b) => i += 1,
            _ => return false,
        }
    }
    true
}

/// Bytes of a reg-name other than `%`: unreserved and sub-delims (a table:
/// every request's `Host` goes through it).
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    table
};

fn is_host_byte(b: u8) -> bool {
    HOST_BYTES[b as usize]
}

/// Splits a request target (RFC 9112 §3.2: origin, absolute or asterisk
/// form) into (authority from absolute-form, path-and-query); an error says
/// why the target is a 400.
pub fn split_target<'b>(
    method: &str,
    target: &'b str,
) -> Result<(Option<&'b str>, &'b str), &'static str> {
    if target.starts_with('/') {
        return Ok((None, target));
    }
    if target == "*" {
        return if method == "OPTIONS" {
            Ok((None, "*"))
        } else {
            Err("asterisk-form target needs OPTIONS")
        };
    }
    let rest = strip_prefix_ignore_case(target, "http://")
        .or_else(|| strip_prefix_ignore_case(target, "https://"))
        .ok_or("unsupported request target form")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.is_empty() || !is_valid_authority(authority.as_bytes()) {
        return Err("invalid authority in request target");
    }
    let path = &rest[authority_end..];
    if path.is_empty() {
        return Ok((Some(authority), "/"));
    }
    if path.starts_with('?') {
        return Err("absolute-form target without path");
    }
    Ok((Some(authority), path))
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::is_valid_authority;

    // Names, IPv4, IPv6 literals, with or without a port, are authorities.
    #[test]
    fn well_formed_authorities_pass() {
        let good = [
            "gw.test",
            "gw.test:8080",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8443",
            "[v1.fe80::a+en1]",
            "xn--bcher-kva.example",
            "a%41b",
            "gw.test:",
        ];
        assert_eq!(
            good.map(|v| is_valid_authority(v.as_bytes())),
            [true; 9],
            "{good:?}"
        );
    }

    // A non-numeric or second port, userinfo, an unclosed or trailing-junk
    // literal, an empty host or a broken %XX are not.
    #[test]
    fn malformed_authorities_fail() {
        let bad = [
            "gw.test:abc",
            "gw.test:80:81",
            "user@gw.test",
            "[::1",
            "[::1]x",
            "[]",
            ":8080",
            "",
            "gw%zz.test",
            "gw%4",
            "gw test",
            "gw\"test",
        ];
        assert_eq!(
            bad.map(|v| is_valid_authority(v.as_bytes())),
            [false; 12],
            "{bad:?}"
        );
    }
}
