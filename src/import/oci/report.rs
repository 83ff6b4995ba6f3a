//! What an OCI import could not carry over as it was: each finding names the
//! input file, the JSON path of the field (`$.specification.routes[2].backend`)
//! and why. The importer prints them on stderr, writes them as comments where
//! the construct would be in the output, and `--strict` fails on any.
//!
//! A leaf: plain data, no JSON walking and no TOML writing.

use std::fmt;
use std::rc::Rc;

/// A place in an input file: the file as given and a JSON path from `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    file: Rc<str>,
    path: String,
}

impl Loc {
    /// The document root of `file`.
    pub fn root(file: &str) -> Loc {
        Loc {
            file: file.into(),
            path: "$".to_string(),
        }
    }

    /// The member `key` of the object here (`$.a.b`, or `$["odd key"]`).
    pub fn key(&self, key: &str) -> Loc {
        let plain = key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        let path = if plain {
            format!("{}.{key}", self.path)
        } else {
            format!("{}[{}]", self.path, serde_json::Value::from(key))
        };
        Loc {
            file: self.file.clone(),
            path,
        }
    }

    /// The element `index` of the array here (`$.routes[2]`).
    pub fn index(&self, index: usize) -> Loc {
        Loc {
            file: self.file.clone(),
            path: format!("{}[{index}]", self.path),
        }
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.file, self.path)
    }
}

/// One input field that was not carried over as it was, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub loc: Loc,
    pub reason: String,
}

impl Finding {
    pub fn new(loc: Loc, reason: impl Into<String>) -> Finding {
        Finding {
            loc,
            reason: one_line(&reason.into()),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.reason)
    }
}

/// Every finding of one import, in the order of the output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty()
    }

    /// The text printed on stderr: a count, then one line per finding.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut text = String::new();
        if self.findings.is_empty() {
            text.push_str("import report: everything was carried over\n");
            return text;
        }
        let _ = writeln!(
            text,
            "import report: {} item(s) not carried over as they were:",
            self.findings.len()
        );
        for finding in &self.findings {
            let _ = writeln!(text, "  {finding}");
        }
        text
    }
}

/// `text` on one line: a finding becomes one comment line in the output.
pub fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Member names that are not identifiers are written in brackets, quoted.
    #[test]
    fn paths_quote_odd_member_names() {
        let loc = Loc::root("d.json").key("data").key("items").index(2);
        assert_eq!(
            (loc.path(), loc.key("a b").path()),
            ("$.data.items[2]", "$.data.items[2][\"a b\"]")
        );
    }

    // A reason spread over lines becomes one line.
    #[test]
    fn reasons_are_one_line() {
        assert_eq!(Finding::new(Loc::root("f"), "a\nb").to_string(), "f $: a b");
    }
}
