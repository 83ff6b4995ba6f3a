//! The path router: a segment trie from path patterns (`/a/{id}`, `/static/{rest*}`, `/*`)
//! to caller values, built once per config snapshot and looked up on every request.
//!
//! Where it sits: after the head is parsed (it gets the path in the form routing sees:
//! unreserved escapes decoded and `//` merged by [`crate::http::path`], query cut off),
//! before the policies run; the caller picks the route's method set, back end and policies
//! from the value it stored. It must not allocate, decode, normalise or panic per lookup:
//! paths come from the network. Matching is byte-exact; at each segment a literal child is
//! tried first, then the parameter child, then the catch-all, backtracking when a more
//! specific branch fails deeper. Patterns have at most [`MAX_SEGMENTS`] segments, so the
//! recursion depth is bounded and every trie node is visited at most once per lookup.

use ahash::AHashMap;
use std::fmt;

/// Most parameters (catch-all included) one pattern may define.
pub const MAX_PARAMS: usize = 8;
/// Most segments one pattern may have; longer paths can only match a catch-all.
pub const MAX_SEGMENTS: usize = 64;
/// Literal children above this count are kept in a hash map instead of a scanned slice.
const FEW_LITERALS: usize = 8;

/// Why a pattern was refused at insert time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    MissingLeadingSlash,
    EmptySegment,
    MalformedSegment { segment: String },
    InvalidParamName { segment: String },
    CatchAllNotLast { segment: String },
    DuplicateParam { name: String },
    TooManyParams { count: usize },
    TooManySegments { count: usize },
    Duplicate { existing: String },
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PatternError as E;
        match self {
            E::MissingLeadingSlash => f.write_str("path pattern must start with '/'"),
            E::EmptySegment => f.write_str("path pattern has an empty segment ('//')"),
            E::MalformedSegment { segment: s } => write!(f, "braces must wrap a segment: '{s}'"),
            E::InvalidParamName { segment: s } => write!(f, "'{s}': name is not an identifier"),
            E::CatchAllNotLast { segment: s } => write!(f, "catch-all '{s}' is not last"),
            E::DuplicateParam { name: n } => write!(f, "parameter '{n}' is defined twice"),
            E::TooManyParams { count: c } => write!(f, "{c} parameters, at most {MAX_PARAMS}"),
            E::TooManySegments { count: c } => write!(f, "{c} segments, at most {MAX_SEGMENTS}"),
            E::Duplicate { existing: e } => write!(f, "same shape as the route '{e}'"),
        }
    }
}

impl std::error::Error for PatternError {}

/// One parsed pattern segment; borrows the pattern text.
enum Seg<'a> {
    Lit(&'a str),
    Param(&'a str),
    CatchAll(&'a str),
}

/// Splits and validates a pattern into its segments and its parameter names in order.
fn parse(pattern: &str) -> Result<(Vec<Seg<'_>>, Vec<&str>), PatternError> {
    use PatternError as E;
    let rest = pattern.strip_prefix('/').ok_or(E::MissingLeadingSlash)?;
    let count = rest.split('/').count();
    if count > MAX_SEGMENTS {
        return Err(E::TooManySegments { count });
    }
    let (mut segs, mut names) = (Vec::with_capacity(count), Vec::<&str>::new());
    for (i, s) in rest.split('/').enumerate() {
        let last = i + 1 == count;
        let seg = match s.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
            _ if s.is_empty() && !last => return Err(E::EmptySegment),
            _ if s == "*" => Seg::CatchAll(s),
            Some(inner) if !inner.contains(['{', '}']) => match placeholder(inner) {
                Some(Placeholder::CatchAll(name)) => Seg::CatchAll(name),
                Some(Placeholder::Param(name)) => Seg::Param(name),
                None => return Err(E::InvalidParamName { segment: s.into() }),
            },
            _ if s.contains(['{', '}']) => return Err(E::MalformedSegment { segment: s.into() }),
            _ => Seg::Lit(s),
        };
        if let Seg::Param(n) | Seg::CatchAll(n) = seg {
            if matches!(seg, Seg::CatchAll(_)) && !last {
                return Err(E::CatchAllNotLast { segment: s.into() });
            }
            if names.contains(&n) {
                return Err(E::DuplicateParam { name: n.into() });
            }
            names.push(n);
        }
        segs.push(seg);
    }
    if names.len() > MAX_PARAMS {
        return Err(E::TooManyParams { count: names.len() });
    }
    Ok((segs, names))
}

/// What a `{...}` placeholder names, in route patterns and back-end URL
/// templates alike: `{name}` one segment, `{name*}` (or `{*}`) the rest of
/// the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder<'a> {
    Param(&'a str),
    /// The name, or `*` for an anonymous catch-all.
    CatchAll(&'a str),
}

/// Parses the inside of a `{...}` placeholder; names are identifiers
/// (a letter or `_`, then letters, digits or `_`).
pub fn placeholder(inner: &str) -> Option<Placeholder<'_>> {
    if inner == "*" {
        return Some(Placeholder::CatchAll("*"));
    }
    match inner.strip_suffix('*') {
        Some(name) if valid_name(name) => Some(Placeholder::CatchAll(name)),
        None if valid_name(inner) => Some(Placeholder::Param(inner)),
        _ => None,
    }
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The parameter names of a pattern in order ("*" for an anonymous catch-all).
pub fn param_names(pattern: &str) -> Result<Vec<String>, PatternError> {
    Ok(parse(pattern)?.1.into_iter().map(String::from).collect())
}

/// A trie node: its parameter child, its exact route and its catch-all route (indices).
#[derive(Debug, Default, Clone, Copy)]
struct Node {
    param: Option<usize>,
    exact: Option<usize>,
    catch_all: Option<usize>,
}

/// A node's literal children: a scanned slice while few, a hash map above [`FEW_LITERALS`].
#[derive(Debug)]
enum Lits {
    Few(Box<[(Box<str>, usize)]>),
    Many(AHashMap<Box<str>, usize>),
}

impl Lits {
    fn freeze(map: AHashMap<Box<str>, usize>) -> Self {
        if map.len() > FEW_LITERALS {
            return Lits::Many(map);
        }
        Lits::Few(map.into_iter().collect())
    }

    #[inline]
    fn get(&self, seg: &str) -> Option<usize> {
        match self {
            Lits::Few(few) => few.iter().find(|(k, _)| **k == *seg).map(|&(_, i)| i),
            Lits::Many(map) => map.get(seg).copied(),
        }
    }
}

#[derive(Debug)]
struct Route<T> {
    /// The pattern as inserted, to name it in a conflict.
    text: Box<str>,
    names: Box<[Box<str>]>,
    value: T,
}

/// Collects patterns; [`RouteTableBuilder::build`] freezes them into a [`RouteTable`].
#[derive(Debug)]
pub struct RouteTableBuilder<T> {
    trie: Vec<Node>,
    lits: Vec<AHashMap<Box<str>, usize>>,
    routes: Vec<Route<T>>,
}

impl<T> Default for RouteTableBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> RouteTableBuilder<T> {
    pub fn new() -> Self {
        let (trie, lits, routes) = (vec![Node::default()], vec![AHashMap::new()], Vec::new());
        Self { trie, lits, routes }
    }

    /// Validates `pattern` and adds it; refuses a pattern with the shape of an earlier one.
    pub fn insert(&mut self, pattern: &str, value: T) -> Result<(), PatternError> {
        let (segs, names) = parse(pattern)?;
        let mut at = 0;
        for seg in &segs {
            let fresh = self.trie.len();
            at = match *seg {
                Seg::Lit(l) => *self.lits[at].entry(l.into()).or_insert(fresh),
                Seg::Param(_) => *self.trie[at].param.get_or_insert(fresh),
                Seg::CatchAll(_) => break,
            };
            if at == fresh {
                self.trie.push(Node::default());
                self.lits.push(AHashMap::new());
            }
        }
        let node = &mut self.trie[at];
        let slot = match segs.last() {
            Some(Seg::CatchAll(_)) => &mut node.catch_all,
            _ => &mut node.exact,
        };
        if let Some(i) = *slot {
            let existing = self.routes[i].text.to_string();
            return Err(PatternError::Duplicate { existing });
        }
        *slot = Some(self.routes.len());
        let (text, names) = (pattern.into(), names.into_iter().map(Box::from).collect());
        self.routes.push(Route { text, names, value });
        Ok(())
    }

    pub fn build(self) -> RouteTable<T> {
        let Self { trie, lits, routes } = self;
        let lits = lits.into_iter().map(Lits::freeze).collect();
        RouteTable { trie, lits, routes }
    }
}

/// The frozen table; immutable, `Send + Sync` when `T` is.
#[derive(Debug)]
pub struct RouteTable<T> {
    trie: Vec<Node>,
    lits: Vec<Lits>,
    routes: Vec<Route<T>>,
}

/// A hit: the stored value and the parameters taken from the path.
#[derive(Debug)]
pub struct RouteMatch<'t, 'p, T> {
    pub value: &'t T,
    pub params: Params<'t, 'p>,
}

/// Fixed-capacity (MAX_PARAMS) list of (name, value) pairs, no heap allocation.
#[derive(Debug, Clone, Copy)]
pub struct Params<'t, 'p> {
    names: &'t [Box<str>],
    values: Values<'p>,
    len: usize,
}

type Values<'p> = [&'p str; MAX_PARAMS];

impl<'t, 'p> Params<'t, 'p> {
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'t str, &'p str)> + '_ {
        let names = self.names.iter().map(|n| &**n);
        names.zip(self.values).take(self.len)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T> RouteTable<T> {
    /// The most specific route for a raw path (no query string); `None` when none matches.
    pub fn lookup<'t, 'p>(&'t self, path: &'p str) -> Option<RouteMatch<'t, 'p, T>> {
        if !path.starts_with('/') {
            return None;
        }
        let mut values = [""; MAX_PARAMS];
        let (route, len) = self.walk(0, path, 0, &mut values)?;
        let Route { names, value, .. } = self.routes.get(route)?;
        let params = Params { names, values, len };
        Some(RouteMatch { value, params })
    }

    /// Matches `rest` (empty or starting with '/') below node `at`, where `n` values are
    /// already taken; returns the route index and the final value count.
    fn walk<'p>(&self, at: usize, rest: &'p str, n: usize, v: &mut Values<'p>) -> Hit {
        let node = self.trie.get(at)?;
        let Some(tail) = rest.strip_prefix('/') else {
            if let Some(r) = node.exact {
                return Some((r, n));
            }
            *v.get_mut(n)? = "";
            return node.catch_all.map(|r| (r, n + 1));
        };
        let end = tail.bytes().position(|b| b == b'/').unwrap_or(tail.len());
        let (seg, next) = (tail.get(..end)?, tail.get(end..)?);
        let lit = self.lits.get(at)?.get(seg);
        if let Some(hit) = lit.and_then(|child| self.walk(child, next, n, v)) {
            return Some(hit);
        }
        if let (Some(child), false) = (node.param, seg.is_empty()) {
            *v.get_mut(n)? = seg;
            if let Some(hit) = self.walk(child, next, n + 1, v) {
                return Some(hit);
            }
        }
        *v.get_mut(n)? = tail;
        node.catch_all.map(|r| (r, n + 1))
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// A walk's result: the matched route's index and how many parameter values it took.
type Hit = Option<(usize, usize)>;

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
