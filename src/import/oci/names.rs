//! Names for imported deployments, usage plans and subscribers: OCI's display
//! names where they are usable, made unique within their kind (`orders`,
//! `orders-2`). OCI identifies resources by OCID and lets display names
//! repeat; Portcullis refers to them by name.
//!
//! A leaf: strings in, strings out.

/// The names given so far for one kind of resource.
#[derive(Debug, Default)]
pub struct Names {
    given: Vec<String>,
}

impl Names {
    /// A unique name from the first usable candidate (empty candidates are
    /// skipped), or `fallback`.
    pub fn unique(&mut self, candidates: &[Option<&str>], fallback: &str) -> String {
        let base = candidates
            .iter()
            .flatten()
            .map(|c| clean(c))
            .find(|c| !c.is_empty())
            .unwrap_or_else(|| clean(fallback));
        let mut name = base.clone();
        let mut n = 2;
        while self.given.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.given.push(name.clone());
        name
    }
}

/// A display name as a config name: printable, single-line, trimmed.
pub fn clean(text: &str) -> String {
    let kept: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A name for a deployment from its path prefix: `/oic/v1` → `oic-v1`.
pub fn from_prefix(prefix: &str) -> Option<String> {
    let name = prefix
        .split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    (!name.is_empty()).then_some(name)
}

/// The last part of an OCID, shortened: a readable fallback name.
pub fn from_ocid(ocid: &str) -> Option<String> {
    let tail = ocid.rsplit('.').next().unwrap_or(ocid);
    let short: String = tail
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!short.is_empty()).then_some(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Repeated names get a counter; control characters and blank names do not survive.
    #[test]
    fn names_are_unique_and_clean() {
        let mut names = Names::default();
        assert_eq!(
            [
                names.unique(&[Some("orders")], "x"),
                names.unique(&[Some("orders")], "x"),
                names.unique(&[Some("  "), Some("a\nb")], "x"),
                names.unique(&[None], "deployment"),
            ],
            ["orders", "orders-2", "a b", "deployment"]
        );
    }

    // Path prefixes and OCIDs give readable fallbacks.
    #[test]
    fn fallback_names() {
        assert_eq!(
            (
                from_prefix("/oic/v1"),
                from_prefix("/"),
                from_ocid("ocid1.x.oc1..abcdefghijk")
            ),
            (
                Some("oic-v1".to_string()),
                None,
                Some("defghijk".to_string())
            )
        );
    }
}
