//! Finding where a dotted key path (`deployments[0].routes[1].path`) sits in a
//! TOML text, so semantic errors can name a line and column like parse errors do.

use super::load::line_column;
use toml_edit::{Document, Item, Value};

/// 1-based (line, column) of the deepest part of `key` found in `text`.
pub fn locate_key(text: &str, key: &str) -> Option<(usize, usize)> {
    let document = Document::parse(text).ok()?;
    let mut item: &Item = document.as_item();
    let mut best = None;
    for part in split_path(key) {
        let next = match part {
            PathPart::Name(name) => {
                if let Some(span) = item
                    .as_table_like()
                    .and_then(|t| t.get_key_value(name))
                    .and_then(|(k, _)| k.span())
                {
                    best = Some(span.start);
                }
                item.get(name)
            }
            PathPart::Index(index) => item.get(index),
        };
        match next {
            Some(found) => {
                if let Some(span) = item_span(found) {
                    best = best.or(Some(span.start));
                }
                item = found;
            }
            None => break,
        }
    }
    best.map(|offset| line_column(text, offset))
}

fn item_span(item: &Item) -> Option<std::ops::Range<usize>> {
    match item {
        Item::Value(Value::InlineTable(t)) => t.span(),
        other => other.span(),
    }
}

enum PathPart<'a> {
    Name(&'a str),
    Index(usize),
}

fn split_path(key: &str) -> Vec<PathPart<'_>> {
    let mut parts = Vec::new();
    for piece in key.split('.') {
        let (name, mut rest) = match piece.find('[') {
            Some(i) => (&piece[..i], &piece[i..]),
            None => (piece, ""),
        };
        if !name.is_empty() {
            parts.push(PathPart::Name(name));
        }
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']').unwrap_or(stripped.len());
            if let Ok(index) = stripped[..end].parse() {
                parts.push(PathPart::Index(index));
            }
            rest = stripped.get(end + 1..).unwrap_or("");
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    // A key inside an array of tables is found on its own line.
    #[test]
    fn finds_key_in_array_of_tables() {
        let text = "[[d]]\nname = \"a\"\n[[d]]\nname = \"b\"\nlistener = \"x\"\n";
        assert_eq!(locate_key(text, "d[1].listener"), Some((5, 1)));
    }
}
