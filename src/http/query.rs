//! Query strings, read one way everywhere: parameters split on `&`, a
//! parameter without `=` has an empty value, a name written with
//! percent-escapes (`api%5Fkey`) is the same name, values stay as sent until a
//! caller decodes them. Used by the usage-plan and JWT token lookups, header
//! templates, the removal of a token from the forwarded target and the admin
//! endpoint.

/// Splits one `key=value` parameter as sent (no `=`: an empty value).
pub fn split_pair(pair: &str) -> (&str, &str) {
    pair.split_once('=').unwrap_or((pair, ""))
}

/// Every value of parameter `name`, as sent (empty ones included).
pub fn values<'q, 'n>(query: &'q str, name: &'n str) -> Values<'q, 'n> {
    Values {
        pairs: query.split('&'),
        name,
    }
}

/// The values of one query parameter, in order ([`values`]).
pub struct Values<'q, 'n> {
    pairs: std::str::Split<'q, char>,
    name: &'n str,
}

impl<'q> Iterator for Values<'q, '_> {
    type Item = &'q str;

    fn next(&mut self) -> Option<&'q str> {
        self.pairs.by_ref().find_map(|pair| {
            let (key, value) = split_pair(pair);
            (!pair.is_empty() && is_param_named(key, self.name)).then_some(value)
        })
    }
}

/// The first non-empty value of `name` in a query string.
pub fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a [u8]> {
    values(query, name)
        .find(|value| !value.is_empty())
        .map(str::as_bytes)
}

/// Whether a query parameter's `key` as sent is `name`, percent-escapes decoded.
pub fn is_param_named(key: &str, name: &str) -> bool {
    key == name || (key.contains('%') && percent_decode(key.as_bytes()) == name.as_bytes())
}

/// Percent-decodes a query value (`+` is a space); a broken escape stays as it is.
pub fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> u8 {
        match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        }
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                out.push(hex(bytes[i + 1]) * 16 + hex(bytes[i + 2]));
                i += 3;
                continue;
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // A query value is found by its (percent-decoded) name; empty values do not count.
    #[test]
    fn query_value_by_name() {
        assert_eq!(
            [
                query_value("a=1&api_key=xyz", "api_key"),
                query_value("xapi_key=1", "api_key"),
                query_value("api_key=&api_key=2", "api_key"),
                query_value("api%5Fkey=enc&api_key=plain", "api_key"),
                query_value("api%5key=broken", "api_key"),
            ],
            [
                Some(&b"xyz"[..]),
                None,
                Some(&b"2"[..]),
                Some(&b"enc"[..]),
                None
            ]
        );
    }

    // Every value of a name is listed, empty ones and escaped names included.
    #[test]
    fn values_by_name() {
        assert_eq!(
            values("t=1&x=2&t&t%5F=3&t=&", "t").collect::<Vec<_>>(),
            ["1", "", ""]
        );
    }

    // Percent-escapes decode; a broken escape stays as it is.
    #[test]
    fn percent_decoding() {
        assert_eq!(
            (percent_decode(b"a%2Bb+c"), percent_decode(b"x%2")),
            (b"a+b c".to_vec(), b"x%2".to_vec())
        );
    }
}
