//! The form of a request path the router matches: equivalent spellings of one
//! path are made one, so that no spelling steers a request past the route (and
//! the policies) that the plain spelling would meet.
//!
//! Runs once per request between parsing and routing ([`crate::runtime::dispatch`]);
//! the route's parameters, and so what the back end receives, are taken from
//! this form. Dot segments never get here (the parser refuses them), and
//! `%2F` stays data inside one segment (RFC 3986 §2.2: an encoded delimiter is
//! not a delimiter), as in Envoy's default and nginx's `proxy_pass` to an
//! upstream without a URI.

/// The path to route on, or `None` when it is `path` itself (the common case:
/// no allocation). Percent-encoded unreserved characters are decoded (RFC 3986
/// §6.2.2.2: `/%61dmin` is `/admin`) and runs of `/` are merged into one, as
/// nginx does before it matches a location (`merge_slashes on`): otherwise
/// `/api//admin` would miss the route `/api/admin` and fall to a catch-all
/// `/api/*`, while the many back ends that merge slashes serve it as
/// `/api/admin`.
pub fn routing_path(path: &str) -> Option<String> {
    if is_routing_form(path.as_bytes()) {
        return None;
    }
    let decoded = decode_unreserved(path);
    let current = decoded.as_deref().unwrap_or(path);
    // A byte scan: `str::contains` with a string pattern sets up a two-way
    // searcher, ~400 instructions for a typical path, on every request.
    if !current.as_bytes().windows(2).any(|pair| pair == b"//") {
        return decoded;
    }
    let mut merged = String::with_capacity(current.len());
    let mut after_slash = false;
    for c in current.chars() {
        if c == '/' && after_slash {
            continue;
        }
        after_slash = c == '/';
        merged.push(c);
    }
    Some(merged)
}

/// True when the path holds no `%` and no `//`: it is its own routing form.
/// One pass over the bytes, the only work a common path costs.
fn is_routing_form(path: &[u8]) -> bool {
    let mut after_slash = false;
    for &b in path {
        if b == b'%' || (after_slash && b == b'/') {
            return false;
        }
        after_slash = b == b'/';
    }
    true
}

/// The path with percent-encoded unreserved characters (`ALPHA DIGIT - . _ ~`)
/// decoded, as RFC 3986 §6.2.2.2 says equivalent URIs must be, so that
/// `/%61dmin` routes like `/admin`; `None` when there is nothing to decode (the
/// common case: no allocation). Other percent-encodings are left as they are.
pub fn decode_unreserved(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let decodable = |i: usize| {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (Some(hi), Some(lo)) => {
                let c = (hi * 16 + lo) as u8;
                (c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')).then_some(c)
            }
            _ => None,
        }
    };
    let first = (0..bytes.len()).find(|&i| bytes[i] == b'%' && decodable(i).is_some())?;
    let mut out = String::with_capacity(path.len());
    out.push_str(&path[..first]);
    let mut i = first;
    while i < bytes.len() {
        match (bytes[i] == b'%').then(|| decodable(i)).flatten() {
            Some(c) => {
                out.push(c as char);
                i += 3;
            }
            None => {
                let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&path[i..i + ch_len]);
                i += ch_len;
            }
        }
    }
    Some(out)
}

/// True for `.` or `..` path segments, raw or percent-encoded. An encoded
/// slash or backslash (`%2F`, `%5C`) bounds a segment here too: routing keeps
/// it as data, but a back end that decodes it before resolving dot segments
/// would read `/api/x/..%2Fadmin` as `/api/admin`, behind the route's back.
pub(super) fn has_dot_segment(path: &str) -> bool {
    let bytes = path.as_bytes();
    if !bytes.iter().any(|&b| b == b'.' || b == b'%') {
        return false;
    }
    let decoded_at = |i: usize| {
        let hex = |j: usize| bytes.get(j).and_then(|&b| (b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => Some((hi * 16 + lo) as u8),
            _ => None,
        }
    };
    // Characters in the current segment, and whether every one is a dot.
    let (mut len, mut dots_only) = (0usize, true);
    let mut i = 0;
    loop {
        let (c, step) = match bytes.get(i) {
            None => (b'/', 0),
            Some(&b) => match decoded_at(i) {
                Some(d @ (b'.' | b'/' | b'\\')) => (d, 3),
                _ => (b, 1),
            },
        };
        if c == b'/' || c == b'\\' {
            if dots_only && matches!(len, 1 | 2) {
                return true;
            }
            if step == 0 {
                return false;
            }
            (len, dots_only) = (0, true);
        } else {
            len += 1;
            dots_only &= c == b'.';
        }
        i += step;
    }
}

#[cfg(test)]
mod tests {
    use super::{decode_unreserved, routing_path};

    // Encoded unreserved characters are decoded for routing; other encodings stay.
    #[test]
    fn unreserved_decoding() {
        assert_eq!(
            [
                decode_unreserved("/%61dmin/%7e%2Fx"),
                decode_unreserved("/plain/path")
            ],
            [Some("/admin/~%2Fx".to_string()), None]
        );
    }

    // Runs of slashes become one, anywhere in the path.
    #[test]
    fn slashes_are_merged() {
        assert_eq!(
            ["//api//admin", "/api///x/", "/a/b"].map(routing_path),
            [Some("/api/admin".into()), Some("/api/x/".into()), None]
        );
    }

    // Decoding and merging compose; an encoded slash is not a slash.
    #[test]
    fn decoding_then_merging() {
        assert_eq!(
            ["/%61pi//admin", "/api%2F%2Fadmin"].map(routing_path),
            [Some("/api/admin".into()), None]
        );
    }
}
