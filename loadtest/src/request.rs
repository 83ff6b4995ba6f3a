//! The request bytes every connection sends: built once per run, written as is.

use crate::spec::LoadSpec;

/// The serialized request head and body.
pub fn build(spec: &LoadSpec) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + spec.body.len());
    out.extend_from_slice(spec.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(spec.target.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let has = |name: &str| {
        spec.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !has("host") {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(spec.target.authority.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in &spec.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let needs_length = !spec.body.is_empty()
        || !matches!(spec.method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS");
    if needs_length && !has("content-length") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", spec.body.len()).as_bytes());
    }
    if !spec.keepalive && !has("connection") {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&spec.body);
    out
}

/// Parses a `--header 'Name: value'` argument.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("header {text:?} must look like 'Name: value'"))?;
    let name = name.trim();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let value = value.trim();
    if !valid_name || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("header {text:?} is not a valid header field"));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // A header argument is split at its first colon and trimmed.
    #[test]
    fn header_argument() {
        assert_eq!(
            parse_header("X-Client-Token: a:b "),
            Ok(("X-Client-Token".into(), "a:b".into()))
        );
    }

    // A header with a line break is refused.
    #[test]
    fn header_injection_refused() {
        assert!(parse_header("X: a\r\nY: b").is_err());
    }
}
