//! Request values that choose things, in one grammar: the context variables
//! of header templates (`${request.headers[X-Tenant]}`) and the selectors of
//! dynamic back ends (`selector = "request.headers[X-Tenant]"`) name the same
//! [`Source`]s. And the case table of a dynamic back end: exact keys found by
//! one hash probe, wildcard patterns tried in order after a miss, then the
//! default.
//!
//! | written | value |
//! |---|---|
//! | `request.path[NAME]` | the route's path parameter |
//! | `request.query[NAME]` | first value of the query parameter, as sent |
//! | `request.headers[NAME]` | first field of that name, trimmed |
//! | `request.host` | the `Host` (or absolute-form authority), lower case, port kept |
//! | `request.auth[NAME]` | a claim or context value of the authenticated caller |
//! | `request.subscriber` or `subscriber.name` | the usage-plan subscriber |
//! | `request.usage_plan` | the usage plan that admitted the request |
//!
//! A leaf: the values themselves are read by whoever holds the request
//! (`policy::headers::TemplateContext::value`).

use ahash::AHashMap;

/// Where a selector or a template variable reads its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    PathParam(Box<str>),
    Query(Box<str>),
    Header(Box<str>),
    Host,
    Auth(Box<str>),
    Subscriber,
    UsagePlan,
}

/// The names [`parse_source`] knows, for error messages.
pub const KNOWN_SOURCES: &str = "request.path[..], request.query[..], request.headers[..], \
     request.host, request.auth[..], request.subscriber (or subscriber.name), request.usage_plan";

/// Parses a source name; `path_params` are the route's parameter names
/// (a `request.path[..]` must name one of them).
pub fn parse_source(name: &str, path_params: &[String]) -> Result<Source, String> {
    match name {
        "request.host" => return Ok(Source::Host),
        "request.subscriber" | "subscriber.name" => return Ok(Source::Subscriber),
        "request.usage_plan" => return Ok(Source::UsagePlan),
        _ => {}
    }
    let indexed = |prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('['))
            .and_then(|r| r.strip_suffix(']'))
            .filter(|key| !key.is_empty())
    };
    if let Some(key) = indexed("request.path") {
        if !path_params.iter().any(|p| p == key) {
            return Err(format!("`{name}`: the route has no path parameter `{key}`"));
        }
        return Ok(Source::PathParam(key.into()));
    }
    if let Some(key) = indexed("request.auth") {
        return Ok(Source::Auth(key.into()));
    }
    if let Some(key) = indexed("request.headers") {
        if !crate::http::fields::is_token(key.as_bytes()) {
            return Err(format!("`{name}`: `{key}` is not a header field name"));
        }
        return Ok(Source::Header(key.into()));
    }
    if let Some(key) = indexed("request.query") {
        return Ok(Source::Query(key.into()));
    }
    Err(format!(
        "unknown variable `{name}` (known: {KNOWN_SOURCES})"
    ))
}

/// A wildcard key: `*` stands for any run of characters (none included),
/// `?` for exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard(Box<str>);

impl Wildcard {
    /// Whether a key is written as a pattern rather than an exact value.
    pub fn is_pattern(key: &str) -> bool {
        key.contains(['*', '?'])
    }

    pub fn new(pattern: &str) -> Wildcard {
        Wildcard(pattern.into())
    }

    /// Glob match, linear in practice (one backtrack point: the last `*`).
    pub fn matches(&self, text: &[u8]) -> bool {
        let (p, t) = (self.0.as_bytes(), text);
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == b'?' || c == t[ti] => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
}

/// A dynamic back end's keys → case index.
#[derive(Debug, Clone, Default)]
pub struct Cases {
    exact: AHashMap<Box<[u8]>, u16>,
    wildcards: Vec<(Wildcard, u16)>,
    default: Option<u16>,
}

impl Cases {
    /// Adds `key` for case `case`; `Err` names the earlier case that has it.
    pub fn add_key(&mut self, key: &str, case: u16) -> Result<(), u16> {
        if Wildcard::is_pattern(key) {
            if let Some((_, earlier)) = self.wildcards.iter().find(|(w, _)| &*w.0 == key) {
                return Err(*earlier);
            }
            self.wildcards.push((Wildcard::new(key), case));
            return Ok(());
        }
        match self.exact.insert(key.as_bytes().into(), case) {
            Some(earlier) => {
                self.exact.insert(key.as_bytes().into(), earlier);
                Err(earlier)
            }
            None => Ok(()),
        }
    }

    /// Makes `case` the default; `Err` names the earlier default.
    pub fn set_default(&mut self, case: u16) -> Result<(), u16> {
        match self.default.replace(case) {
            Some(earlier) => {
                self.default = Some(earlier);
                Err(earlier)
            }
            None => Ok(()),
        }
    }

    /// The case for a request whose selected value is `key` (`None`: the
    /// request has no such value): exact keys first, then the first matching
    /// wildcard, then the default.
    pub fn choose(&self, key: Option<&[u8]>) -> Option<u16> {
        if let Some(key) = key {
            if let Some(&case) = self.exact.get(key) {
                return Some(case);
            }
            if let Some((_, case)) = self.wildcards.iter().find(|(w, _)| w.matches(key)) {
                return Some(*case);
            }
        }
        self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_refuse() {
        let params = ["tenant".to_string()];
        assert_eq!(
            parse_source("request.headers[X-Region]", &params),
            Ok(Source::Header("X-Region".into()))
        );
        assert_eq!(
            parse_source("request.path[tenant]", &params),
            Ok(Source::PathParam("tenant".into()))
        );
        assert_eq!(parse_source("request.host", &params), Ok(Source::Host));
        assert_eq!(
            parse_source("subscriber.name", &params),
            Ok(Source::Subscriber)
        );
        assert_eq!(
            parse_source("request.usage_plan", &params),
            Ok(Source::UsagePlan)
        );
        assert!(parse_source("request.path[nope]", &params).is_err());
        assert!(parse_source("request.headers[a b]", &params).is_err());
        assert!(parse_source("request.headers[]", &params).is_err());
        assert!(parse_source("request.cookie[x]", &params)
            .unwrap_err()
            .contains("known:"));
    }

    #[test]
    fn wildcards() {
        let w = Wildcard::new;
        assert!(w("eu-*").matches(b"eu-west"));
        assert!(w("eu-*").matches(b"eu-"));
        assert!(!w("eu-*").matches(b"us-east"));
        assert!(w("*-prod").matches(b"a-b-prod"));
        assert!(w("a?c").matches(b"abc"));
        assert!(!w("a?c").matches(b"ac"));
        assert!(w("*a*b*").matches(b"xxaxxbxx"));
        assert!(!w("*a*b*").matches(b"xxbxxaxx"));
        assert!(w("*").matches(b""));
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let mut cases = Cases::default();
        cases.add_key("eu-central", 0).unwrap();
        cases.add_key("eu-*", 1).unwrap();
        cases.add_key("*", 2).unwrap();
        assert_eq!(cases.choose(Some(b"eu-central")), Some(0));
        assert_eq!(cases.choose(Some(b"eu-west")), Some(1));
        assert_eq!(cases.choose(Some(b"us")), Some(2));
        assert_eq!(cases.choose(None), None);
        cases.set_default(3).unwrap();
        assert_eq!(cases.choose(None), Some(3));
        assert_eq!(cases.set_default(4), Err(3));
        assert_eq!(cases.add_key("eu-central", 5), Err(0));
        assert_eq!(cases.choose(Some(b"eu-central")), Some(0));
        assert_eq!(cases.add_key("eu-*", 5), Err(1));
    }
}
