//! Serde's and toml's error messages in an operator's words: `invalid type:
//! string "fast", expected f64` at `timeouts.head` becomes `expected a number
//! of seconds, like 15 or 0.5; found text "fast"`.
//!
//! A leaf of [`crate::config`]: text in, text out; the key (when known) picks
//! the unit a number is in. A message this module does not recognise is kept
//! as it is.

/// `message` (serde's or toml's) reworded for the operator; `key` is the
/// dotted key it is about, when known.
pub fn reword(message: &str, key: Option<&str>) -> String {
    let last = key.map_or("", last_segment);
    if let Some(rest) = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
    {
        if let Some((found, expected)) = rest.rsplit_once(", expected ") {
            return format!(
                "expected {}; found {}",
                expected_words(expected, key.unwrap_or(""), last),
                found_words(found)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("invalid length ") {
        if let Some((length, expected)) = rest.split_once(", expected ") {
            return format!(
                "expected {}; found a list of {length}",
                expected_words(expected, key.unwrap_or(""), last)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            return format!(
                "{} is not accepted here; expected {}",
                quoted(found),
                names(expected, true)
            );
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field ") {
        return match rest.split_once(", expected ") {
            Some((field, expected)) => {
                format!(
                    "unknown key {field}; the keys here are {}",
                    names(expected, false)
                )
            }
            None => match rest.split_once(", there are no fields") {
                Some((field, _)) => format!("unknown key {field}; no keys are accepted here"),
                None => format!("unknown key {rest}"),
            },
        };
    }
    if let Some(field) = message.strip_prefix("missing field ") {
        return format!("the required key {field} is missing");
    }
    if let Some(field) = message.strip_prefix("duplicate field ") {
        return format!("the key {field} is given twice");
    }
    if message.starts_with("data did not match any variant of untagged enum") {
        return match last {
            "authorization" => {
                "expected \"anonymous\", \"authenticated\" or { any_of = [\"scope\", ...] }".into()
            }
            _ => "the value has none of the forms this key accepts".into(),
        };
    }
    if message == "wanted string or table" {
        return "expected a name in double quotes, like \"value\"".into();
    }
    syntax(message)
}

/// TOML syntax errors an operator meets most, in words; any other keeps
/// toml's text, without a bare "expected nothing".
fn syntax(message: &str) -> String {
    let unquoted = "text must be in double quotes, like \"value\"";
    match message {
        "duplicate key" => "this key is given twice".into(),
        "string values must be quoted, expected literal string" => unquoted.into(),
        "invalid float, expected nothing" | "invalid integer, expected nothing" => {
            format!("not a number; {unquoted}")
        }
        other => other
            .strip_suffix(", expected nothing")
            .unwrap_or(other)
            .to_string(),
    }
}

/// The last name of a dotted key, without an index (`routes[2]` → `routes`).
fn last_segment(key: &str) -> &str {
    let last = key.rsplit('.').next().unwrap_or(key);
    last.split('[').next().unwrap_or(last)
}

/// What serde's `expected ...` says, in words.
fn expected_words(expected: &str, key: &str, last: &str) -> String {
    let integer = |range: &str| {
        let example = if last.ends_with("_bytes") {
            "8192"
        } else if last == "reject_status" {
            "403"
        } else if last == "status" {
            "200"
        } else {
            "100"
        };
        format!("a whole number{range}, like {example}")
    };
    match expected {
        "f64" | "f32" => {
            if key.starts_with("timeouts.") || last.ends_with("timeout") {
                "a number of seconds, like 15 or 0.5".into()
            } else if last == "requests_per_second" {
                "a number of requests per second, like 100 or 0.5".into()
            } else {
                "a number, like 15 or 0.5".into()
            }
        }
        "u8" => integer(" from 0 to 255"),
        "u16" => integer(" from 0 to 65535"),
        "u32" => integer(" from 0 to 4294967295"),
        "u64" | "usize" | "u128" => integer(" (0 or more)"),
        "i8" | "i16" | "i32" | "i64" | "isize" | "i128" => integer(""),
        "a boolean" => "true or false (without quotes)".into(),
        "a string" | "a borrowed string" => "text in double quotes, like \"...\"".into(),
        "a character" => "one character in double quotes".into(),
        "a sequence" => "a list in square brackets, like [\"a\", \"b\"]".into(),
        "a map" => "a table, like { name = \"value\" }".into(),
        "path string" => "a path in double quotes".into(),
        other if other.starts_with("struct ") => {
            "a table: a [section] or { key = value, ... }".into()
        }
        other if other.starts_with("enum ") => {
            "one of the names this key accepts, in double quotes".into()
        }
        other => names(other, true),
    }
}

/// What serde's `Unexpected` says was found, in words.
fn found_words(found: &str) -> String {
    let between_ticks = |prefix: &str| {
        found
            .strip_prefix(prefix)
            .and_then(|s| s.strip_prefix('`'))
            .and_then(|s| s.strip_suffix('`'))
            .map(str::to_string)
    };
    if let Some(text) = found.strip_prefix("string ") {
        return format!("text {text}");
    }
    if let Some(value) = between_ticks("integer ")
        .or_else(|| between_ticks("floating point "))
        .or_else(|| between_ticks("boolean "))
    {
        return value;
    }
    match found {
        "sequence" => "a list".into(),
        "map" => "a table".into(),
        "unit value" => "nothing".into(),
        other => other.to_string(),
    }
}

/// serde's list of names (`one of `a`, `b``, `` `a` or `b` ``, `` `a` ``) as
/// TOML strings (`values`) or as keys (`` `a`, `b` ``).
fn names(list: &str, values: bool) -> String {
    let list = list.strip_prefix("one of ").unwrap_or(list);
    if !values {
        return list.replace("` or `", "`, `");
    }
    let items: Vec<String> = list
        .split(['`'])
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, name)| format!("\"{name}\""))
        .collect();
    match items.as_slice() {
        [] => list.to_string(),
        [one] => one.clone(),
        [head @ .., last] => format!("{} or {last}", head.join(", ")),
    }
}

/// `` `x` `` as `"x"`.
fn quoted(name: &str) -> String {
    match name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) {
        Some(bare) => format!("\"{bare}\""),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::reword;

    // Each serde type name reads as what an operator writes, keyed by the unit
    // where the key has one.
    #[test]
    fn serde_type_names_read_as_operator_words() {
        let cases = [
            ("invalid type: string \"fast\", expected f64", "timeouts.head",
             "expected a number of seconds, like 15 or 0.5; found text \"fast\""),
            ("invalid type: string \"x\", expected f64", "deployments[0].routes[0].backend.read_timeout",
             "expected a number of seconds, like 15 or 0.5; found text \"x\""),
            ("invalid type: boolean `true`, expected f64", "deployments[0].rate_limit.requests_per_second",
             "expected a number of requests per second, like 100 or 0.5; found true"),
            ("invalid type: string \"big\", expected usize", "limits.max_head_bytes",
             "expected a whole number (0 or more), like 8192; found text \"big\""),
            ("invalid value: integer `-1`, expected u64", "usage_plans[0].entitlements[0].quota.limit",
             "expected a whole number (0 or more), like 100; found -1"),
            ("invalid value: integer `70000`, expected u16", "deployments[0].routes[0].backend.status",
             "expected a whole number from 0 to 65535, like 200; found 70000"),
            ("invalid type: floating point `1.5`, expected u32", "listeners[0].max_connections_per_ip",
             "expected a whole number from 0 to 4294967295, like 100; found 1.5"),
            ("invalid type: integer `5`, expected i64", "x", "expected a whole number, like 100; found 5"),
            ("invalid type: string \"yes\", expected a boolean", "listeners[0].tls.client_auth.required",
             "expected true or false (without quotes); found text \"yes\""),
            ("invalid type: integer `1`, expected a string", "listeners[0].name",
             "expected text in double quotes, like \"...\"; found 1"),
            ("invalid type: string \"GET\", expected a sequence", "deployments[0].routes[0].methods",
             "expected a list in square brackets, like [\"a\", \"b\"]; found text \"GET\""),
            ("invalid type: sequence, expected a map", "deployments[0].routes[0].backend.headers",
             "expected a table, like { name = \"value\" }; found a list"),
            ("invalid type: string \"x\", expected struct Limits", "limits",
             "expected a table: a [section] or { key = value, ... }; found text \"x\""),
            ("unknown variant `weekly`, expected one of `minute`, `hour`, `day`, `week`, `month`", "usage_plans[0].entitlements[0].quota.period",
             "\"weekly\" is not accepted here; expected \"minute\", \"hour\", \"day\", \"week\" or \"month\""),
            ("unknown variant `ftp`, expected `http` or `stock`", "deployments[0].routes[0].backend.type",
             "\"ftp\" is not accepted here; expected \"http\" or \"stock\""),
            ("unknown field `port`, expected `name` or `address`", "listeners[0].port",
             "unknown key `port`; the keys here are `name`, `address`"),
            ("missing field `address`", "listeners[0]", "the required key `address` is missing"),
            ("data did not match any variant of untagged enum AuthorizationConfig", "deployments[0].routes[0].authorization",
             "expected \"anonymous\", \"authenticated\" or { any_of = [\"scope\", ...] }"),
            ("duplicate key", "limits", "this key is given twice"),
            (
                "string values must be quoted, expected literal string",
                "listeners[0].name",
                "text must be in double quotes, like \"value\"",
            ),
            (
                "invalid float, expected nothing",
                "listeners[0].address",
                "not a number; text must be in double quotes, like \"value\"",
            ),
            ("unclosed table, expected `]`", "limits", "unclosed table, expected `]`"),
            ("something else entirely", "x", "something else entirely"),
        ];
        for (raw, key, want) in cases {
            assert_eq!(reword(raw, Some(key)), want, "{raw}");
        }
    }
}
