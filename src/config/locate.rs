//! Finding where a dotted key path (`deployments[0].routes[1].path`) sits in a
//! TOML text, so semantic errors can name a line and column like parse errors
//! do; and, for a text that does not parse, the key nearest to the error.

use std::collections::HashMap;
use toml_edit::{Document, Item, Value};

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before
        .get(line_start..)
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

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

/// The key nearest to byte `offset` of a TOML text that does not parse: the
/// key of that line (or of the value the line continues), under the table
/// header in force there, e.g. `listeners[1].address`; the table itself on a
/// header or blank line; None at the top level outside any key. Read line by
/// line without a parser, so a text broken before `offset` may mislead it.
pub fn nearest_key(text: &str, offset: usize) -> Option<String> {
    let target = line_column(text, offset).0;
    let mut scan = Scan::default();
    for (n, line) in text.split('\n').enumerate() {
        let found = scan.line(line);
        if n + 1 == target {
            return found.filter(|k| !k.is_empty());
        }
    }
    None
}

/// What the line-by-line reading knows: the table in force (with indices),
/// how many entries each array of tables has, and a value left open.
#[derive(Default)]
struct Scan {
    table: String,
    counts: HashMap<String, usize>,
    /// Key whose array, inline table or multi-line string continues.
    open_key: Option<String>,
    depth: i64,
    /// `"""` or `'''` while inside a multi-line string.
    in_string: Option<&'static str>,
}

impl Scan {
    /// Reads one line; returns the key in force on it.
    fn line(&mut self, line: &str) -> Option<String> {
        if let Some(delimiter) = self.in_string {
            if line.matches(delimiter).count() % 2 == 1 {
                self.in_string = None;
            }
            return Some(self.open());
        }
        if self.depth > 0 {
            let key = self.open();
            self.depth += bracket_depth(line);
            return Some(key);
        }
        self.open_key = None;
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[') {
            let array = header.starts_with('[');
            let name = header.trim_start_matches('[');
            let name = name.split(']').next().unwrap_or(name);
            self.table = self.header(name, array);
            return Some(self.table.clone());
        }
        let (key, value) = match trimmed.split_once('=') {
            Some((key, value)) => (bare(key), value),
            None => {
                let word = trimmed
                    .split(|c: char| c.is_whitespace() || c == '#')
                    .next();
                (bare(word.unwrap_or("")), "")
            }
        };
        if key.is_empty() {
            return Some(self.table.clone());
        }
        let full = join(&self.table, &key);
        for delimiter in ["\"\"\"", "'''"] {
            if value.matches(delimiter).count() % 2 == 1 {
                self.in_string = Some(delimiter);
            }
        }
        self.depth = bracket_depth(value).max(0);
        if self.depth > 0 || self.in_string.is_some() {
            self.open_key = Some(key);
        }
        Some(full)
    }

    fn open(&self) -> String {
        join(&self.table, self.open_key.as_deref().unwrap_or(""))
    }

    /// The path of a `[a.b]` or `[[a.b]]` header, indices of arrays of tables included.
    fn header(&mut self, name: &str, array: bool) -> String {
        let parts: Vec<String> = name.split('.').map(bare).collect();
        let mut path = String::new();
        for (i, part) in parts.iter().enumerate() {
            path = join(&path, part);
            if array && i + 1 == parts.len() {
                let count = self.counts.entry(path.clone()).or_insert(0);
                path = format!("{path}[{count}]");
                *count += 1;
            } else if let Some(count) = self.counts.get(&path) {
                path = format!("{path}[{}]", count.saturating_sub(1));
            }
        }
        path
    }
}

/// A key as written, without quotes and surrounding space.
fn bare(key: &str) -> String {
    key.trim().trim_matches(['"', '\'']).to_string()
}

fn join(table: &str, key: &str) -> String {
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (_, true) => table.to_string(),
        _ => format!("{table}.{key}"),
    }
}

/// Brackets and braces opened minus closed in `text`, outside strings and comments.
fn bracket_depth(text: &str) -> i64 {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '#' => break,
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                _ => {}
            },
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    // Line and column count from 1.
    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }

    // A syntax error names the key of its line under the table in force,
    // with the index of an array of tables, or of the value it continues.
    #[test]
    fn nearest_key_of_a_broken_line() {
        let text = "admin = \"\"\n[[listeners]]\nname = \"a\"\n[[listeners]]\naddress = 127.0.0.1:80\n[[deployments]]\n[[deployments.routes]]\nmethods = [\n  \"GET\",\n  GET,\n]\n[limits\n";
        let at = |line: usize| {
            let offset: usize = text.split('\n').take(line - 1).map(|l| l.len() + 1).sum();
            nearest_key(text, offset)
        };
        assert_eq!(
            [at(1), at(5), at(10), at(12)],
            [
                Some("admin".to_string()),
                Some("listeners[1].address".to_string()),
                Some("deployments[0].routes[0].methods".to_string()),
                Some("limits".to_string()),
            ]
        );
    }

    // A key inside an array of tables is found on its own line.
    #[test]
    fn finds_key_in_array_of_tables() {
        let text = "[[d]]\nname = \"a\"\n[[d]]\nname = \"b\"\nlistener = \"x\"\n";
        assert_eq!(locate_key(text, "d[1].listener"), Some((5, 1)));
    }
}
