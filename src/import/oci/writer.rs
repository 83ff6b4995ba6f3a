//! Writes an import's [`Output`] as Portcullis TOML: the header, the
//! listener, `[[deployments]]` with their sub-tables and `[[deployments.routes]]`,
//! `[[usage_plans]]`, `[[subscribers]]`. Findings become `# not carried over:`
//! comments above the table they belong to; a skipped table is written
//! commented out, so the reader sees what was not imported where it would be.
//!
//! Values are written by `toml_edit`, so quoting and escaping are TOML's own.

use super::model::{Output, Section};
use std::fmt::Write;

/// The TOML text of `output`.
pub fn write(output: &Output) -> String {
    let mut text = String::new();
    for line in &output.header {
        push_comment(&mut text, line);
    }
    for finding in &output.findings {
        push_comment(&mut text, &format!("not carried over: {finding}"));
    }
    text.push('\n');
    section(&mut text, "[[listeners]]", &output.listener, false);
    for d in &output.deployments {
        text.push('\n');
        let off = d.section.skipped;
        section(&mut text, "[[deployments]]", &d.section, off);
        for (name, table) in &d.tables {
            text.push('\n');
            let header = format!("[deployments.{name}]");
            section(&mut text, &header, table, off || table.skipped);
        }
        for route in &d.routes {
            text.push('\n');
            section(
                &mut text,
                "[[deployments.routes]]",
                route,
                off || route.skipped,
            );
        }
    }
    for p in &output.plans {
        text.push('\n');
        let off = p.section.skipped;
        section(&mut text, "[[usage_plans]]", &p.section, off);
        for e in &p.entitlements {
            text.push('\n');
            section(
                &mut text,
                "[[usage_plans.entitlements]]",
                e,
                off || e.skipped,
            );
        }
    }
    for s in &output.subscribers {
        text.push('\n');
        let off = s.section.skipped;
        section(&mut text, "[[subscribers]]", &s.section, off);
        for c in &s.clients {
            section(&mut text, "[[subscribers.clients]]", c, off || c.skipped);
        }
    }
    text
}

/// One table: comments, findings, the header and its entries (all commented
/// out when `off`).
fn section(text: &mut String, header: &str, section: &Section, off: bool) {
    for line in &section.comments {
        push_comment(text, line);
    }
    for finding in &section.findings {
        push_comment(text, &format!("not carried over: {finding}"));
    }
    let prefix = if off { "# " } else { "" };
    let _ = writeln!(text, "{prefix}{header}");
    for (key, value) in &section.entries {
        // A value may span lines (a PEM key): each line is commented out.
        let line = format!("{} = {value}", bare_or_quoted(key));
        for part in line.split('\n') {
            let _ = writeln!(text, "{prefix}{part}");
        }
    }
}

fn push_comment(text: &mut String, line: &str) {
    let line = super::report::one_line(line);
    if line.is_empty() {
        text.push_str("#\n");
    } else {
        let _ = writeln!(text, "# {line}");
    }
}

/// A key as TOML writes it: bare when it can be.
fn bare_or_quoted(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if bare {
        key.to_string()
    } else {
        toml_edit::Value::from(key).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::oci::model::{table, DeploymentOut};

    fn sample() -> Output {
        let mut output = Output::default();
        output.listener.set("name", "public");
        let mut d = DeploymentOut::default();
        d.section.set("name", "a \"quoted\" name");
        d.section.set(
            "rate_limit",
            table(vec![("requests_per_second", 2.0.into())]),
        );
        let mut route = Section {
            skipped: true,
            ..Section::default()
        };
        route.set("path", "/fn");
        d.routes.push(route);
        output.deployments.push(d);
        output
    }

    // The written text is TOML that parses, with skipped tables commented out.
    #[test]
    fn output_parses_and_skips_are_comments() {
        let text = write(&sample());
        let parsed: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            (
                parsed["deployments"][0]["name"].as_str(),
                parsed["deployments"][0].get("routes").is_none(),
                text.contains("# path = \"/fn\""),
            ),
            (Some("a \"quoted\" name"), true, true)
        );
    }
}
