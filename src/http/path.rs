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

use super::request::decode_unreserved;

/// The path to route on, or `None` when it is `path` itself (the common case:
/// no allocation). Percent-encoded unreserved characters are decoded (RFC 3986
/// §6.2.2.2: `/%61dmin` is `/admin`) and runs of `/` are merged into one, as
/// nginx does before it matches a location (`merge_slashes on`): otherwise
/// `/api//admin` would miss the route `/api/admin` and fall to a catch-all
/// `/api/*`, while the many back ends that merge slashes serve it as
/// `/api/admin`.
pub fn routing_path(path: &str) -> Option<String> {
    let decoded = decode_unreserved(path);
    let current = decoded.as_deref().unwrap_or(path);
    if !current.contains("//") {
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

#[cfg(test)]
mod tests {
    use super::routing_path;

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
