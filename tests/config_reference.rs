//! The configuration reference names every key the config accepts, once,
//! with a default, and no key the config refuses.
//!
//! The accepted keys come from the config types themselves
//! (`support/config_keys.rs` walks them). The reference is read through
//! [`reference_text`], so the page can move by changing [`REFERENCE_PATH`]
//! (and its heading) alone.

#[path = "support/config_keys.rs"]
mod config_keys;

use config_keys::keys_of;
use portcullis::config::{AnyOf, Config};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The page holding the configuration reference, from the crate root.
const REFERENCE_PATH: &str = "docs/configuration.md";
/// The reference's heading in that page (`None`: the whole page is the reference).
const REFERENCE_HEADING: Option<&str> = None;

/// The reference as text: the page at [`REFERENCE_PATH`], cut to the section
/// under [`REFERENCE_HEADING`] when there is one.
fn reference_text() -> String {
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE_PATH);
    let text = std::fs::read_to_string(&page)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", page.display()));
    let Some(heading) = REFERENCE_HEADING else {
        return text;
    };
    let start = text
        .find(&format!("{heading}\n"))
        .unwrap_or_else(|| panic!("{REFERENCE_PATH} has no `{heading}`"));
    let rest = &text[start + heading.len()..];
    let level = heading.split(' ').next().unwrap_or("##");
    let end = rest.find(&format!("\n{level} ")).unwrap_or(rest.len());
    rest[..end].to_string()
}

/// One row of the reference: its keys (full dotted paths) and its default.
struct Row {
    keys: Vec<String>,
    default: String,
}

/// The rows of the reference's key tables. A heading names the table its
/// rows are under (`` ## `[[deployments.routes]]` ``; a heading without
/// a backticked table is the top level); a row's first cell holds one or
/// more backticked keys, a later one without a dot being a sibling of the first.
fn reference_rows(text: &str) -> Vec<Row> {
    let mut table = String::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') {
            let heading = line.trim_start_matches('#');
            table = backticked(heading)
                .first()
                .map(|t| t.trim_matches(['[', ']']).to_string())
                .unwrap_or_default();
            continue;
        }
        let cells = cells(line);
        let [first, default, ..] = cells.as_slice() else {
            continue;
        };
        if first == "key" || first.starts_with("---") {
            continue;
        }
        let names = backticked(first);
        let Some(head) = names.first() else {
            continue;
        };
        let parent = head.rsplit_once('.').map(|(p, _)| p.to_string());
        let keys = names
            .iter()
            .map(|name| {
                let name = match (&parent, name.contains('.')) {
                    (Some(parent), false) if name != head => format!("{parent}.{name}"),
                    _ => name.clone(),
                };
                normal(&if table.is_empty() {
                    name
                } else {
                    format!("{table}.{name}")
                })
            })
            .collect();
        rows.push(Row {
            keys,
            default: default.clone(),
        });
    }
    rows
}

/// The cells of a Markdown table row (`\|` is a bar inside a cell).
fn cells(line: &str) -> Vec<String> {
    let Some(inner) = line.trim().strip_prefix('|') else {
        return Vec::new();
    };
    inner
        .replace("\\|", "\u{0}")
        .split('|')
        .map(|c| c.trim().replace('\u{0}', "|"))
        .collect()
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// A key path without list markers: `listeners[].tls.certificates[].cert`
/// reads `listeners.tls.certificates.cert`.
fn normal(key: &str) -> String {
    key.replace("[]", "")
}

/// Every key the config accepts, without list markers.
fn accepted_keys() -> BTreeSet<String> {
    let config = keys_of::<Config>("");
    // The one key whose type is an untagged enum: a name, or a table of its own.
    let route_authorization = "deployments[].routes[].authorization";
    // Secrets by reference: a string, or `{ env = .. }` / `{ file = .. }`.
    let secrets = [
        "deployments[].authentication.introspection.client_secret",
        "deployments[].routes[].backend.credentials.client_secret",
        "deployments[].routes[].backend.credentials.password",
        "deployments[].routes[].request_headers.set[].value",
        "deployments[].routes[].response_headers.set[].value",
        "cluster.password",
    ];
    assert_eq!(
        config
            .opaque
            .iter()
            .map(String::as_str)
            .filter(|k| !secrets.contains(k))
            .collect::<Vec<_>>(),
        [route_authorization],
        "a new key of a type that does not say its shape: walk its table forms here"
    );
    let any_of = keys_of::<AnyOf>(route_authorization);
    config
        .leaves
        .iter()
        .chain(&any_of.leaves)
        .map(|k| normal(k))
        .chain(secrets.iter().map(|k| normal(k)))
        .collect()
}

// Rule: every key the config structs accept has a row in the reference, with
// a default; no row names a key the config refuses; no key has two rows.
#[test]
fn reference_lists_every_key_once_with_its_default() {
    let accepted = accepted_keys();
    assert!(
        accepted.len() > 100 && accepted.contains("listeners.tls.client_auth.required"),
        "the walk found too little: {accepted:?}"
    );
    let rows = reference_rows(&reference_text());
    let mut documented: BTreeMap<String, usize> = BTreeMap::new();
    for row in &rows {
        for key in &row.keys {
            *documented.entry(key.clone()).or_default() += 1;
            assert!(
                !row.default.is_empty(),
                "`{key}` has no default in the reference"
            );
        }
    }
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    let unknown: Vec<&String> = documented
        .keys()
        .filter(|k| !accepted.contains(*k))
        .collect();
    let twice: Vec<&String> = documented
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty() && unknown.is_empty() && twice.is_empty(),
        "{REFERENCE_PATH}: keys missing from the reference: {missing:?}; rows for keys the config does not accept: {unknown:?}; keys with more than one row: {twice:?}"
    );
}

// Rule: the reference reader finds the rows of the table its heading names,
// and sibling keys written short.
#[test]
fn reference_rows_take_their_table_from_the_heading() {
    let text = "### Top level\n| key | default | meaning |\n|---|---|---|\n| `admin` | x | y |\n### `[[listeners]]`\n| `tls.certificates[].cert`, `key` | required | z \\| w |\n";
    let rows = reference_rows(text);
    assert_eq!(
        rows.iter().map(|r| r.keys.clone()).collect::<Vec<_>>(),
        [
            vec!["admin".to_string()],
            vec![
                "listeners.tls.certificates.cert".to_string(),
                "listeners.tls.certificates.key".to_string()
            ]
        ]
    );
}
