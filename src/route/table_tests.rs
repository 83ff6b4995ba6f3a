//! The path table's rules, one test each: matching order, parameters,
//! catch-alls, pattern errors.

use super::{param_names, PatternError as E, RouteTable, RouteTableBuilder, MAX_SEGMENTS};

/// `rule!(name: actual => expected)`: one rule, one assert.
macro_rules! rule {
    ($name:ident: $actual:expr => $expected:expr) => {
        #[test]
        fn $name() {
            assert_eq!($actual, $expected);
        }
    };
}

fn table(patterns: &[&str]) -> RouteTable<usize> {
    let mut b = RouteTableBuilder::new();
    for (i, p) in patterns.iter().enumerate() {
        b.insert(p, i).unwrap();
    }
    b.build()
}

/// The index of the pattern each path lands on.
fn hits(patterns: &[&str], paths: &[&str]) -> Vec<Option<usize>> {
    let t = table(patterns);
    let hit = |p: &&str| t.lookup(p).map(|m| *m.value);
    paths.iter().map(hit).collect()
}

/// The parameters `path` yields, as "name=value" pairs joined by ",".
fn params(patterns: &[&str], path: &str) -> String {
    let t = table(patterns);
    let Some(m) = t.lookup(path) else {
        return "no match".into();
    };
    let pairs: Vec<_> = m.params.iter().map(|(n, v)| format!("{n}={v}")).collect();
    pairs.join(",")
}

/// The first error inserting `patterns` in order meets.
fn err(patterns: &[&str]) -> E {
    let mut b = RouteTableBuilder::new();
    let mut results = patterns.iter().map(|p| b.insert(p, ()));
    results.find_map(Result::err).expect("a pattern is refused")
}

// A literal pattern matches its own path.
rule!(exact_hit: hits(&["/a/b", "/a/c"], &["/a/c"]) => [Some(1)]);
// A literal pattern misses longer, shorter, differently cased and extended paths.
rule!(exact_miss: hits(&["/a/b"], &["/a/b/c", "/a", "/A/b", "/a/bb"]) => [None; 4]);
// A trailing slash matters, both ways.
rule!(trailing_slash: hits(&["/a", "/b/"], &["/a/", "/b", "/b/"]) => [None, None, Some(1)]);
// A parameter takes one whole segment, named by the pattern.
rule!(params_extracted: params(&["/o/{id}/i/{n}"], "/o/42/i/7") => "id=42,n=7");
// A parameter never matches an empty segment.
rule!(param_not_empty: hits(&["/a/{x}/b", "/c/{y}"], &["/a//b", "/c/"]) => [None, None]);
// Params::get finds a matched route's parameters by name, and nothing else.
rule!(params_get: table(&["/{u}/{r*}"]).lookup("/a/x").map(|m| m.params)
    .map(|p| [p.get("u"), p.get("r"), p.get("x")]) => Some([Some("a"), Some("x"), None]));
// A literal child wins over a parameter child.
rule!(literal_beats_param: hits(&["/a/{id}", "/a/me"], &["/a/me"]) => [Some(1)]);
// A parameter child wins over a catch-all.
rule!(param_beats_catch_all: hits(&["/a/{r*}", "/a/{id}"], &["/a/x"]) => [Some(1)]);
// When the literal branch fails deeper, the parameter branch is tried.
rule!(backtracks: hits(&["/a/{id}/x", "/a/b/y"], &["/a/b/x"]) => [Some(0)]);
// After backtracking, names and values come from the pattern that matched.
rule!(no_stale_params: params(&["/{a}/b/c", "/{x}/{y}/d"], "/1/b/d") => "x=1,y=b");
// A catch-all takes the remainder after its prefix, raw, slashes included.
rule!(catch_all_remainder: params(&["/s/{r*}"], "/s/a/b//%2F") => "r=a/b//%2F");
// A catch-all matches its bare prefix, and the prefix plus "/", with an empty value.
rule!(catch_all_empty: [params(&["/s/{r*}"], "/s"), params(&["/s/{r*}"], "/s/")] => ["r="; 2]);
// A catch-all is the fallback when a deeper, more specific branch fails.
rule!(catch_all_fallback: params(&["/s/{r*}", "/s/i/{id}"], "/s/i/a/b") => "r=i/a/b");
// A catch-all's prefix ends at a segment boundary.
rule!(catch_all_boundary: hits(&["/static/{rest*}"], &["/staticx"]) => [None]);
// The anonymous catch-all "*" is named "*".
rule!(anonymous_catch_all: params(&["/files/*"], "/files/x/y") => "*=x/y");
// The root pattern "/" is exact.
rule!(root_is_exact: hits(&["/"], &["/", "/a", "//"]) => [Some(0), None, None]);
// "/*" matches every path, "/" included.
rule!(slash_star_all: hits(&["/*"], &["/", "/a", "/a/b", "//"]) => [Some(0); 4]);
// Under "/*", more specific routes still win.
rule!(slash_star_loses: hits(&["/*", "/a"], &["/a", "/a/"]) => [Some(1), Some(0)]);
// A pattern must start with "/".
rule!(error_leading_slash: err(&["a/b"]) => E::MissingLeadingSlash);
// An empty segment ("//") is refused anywhere but as the trailing slash.
rule!(error_empty_segment: err(&["/a//b"]) => E::EmptySegment);
// Braces must wrap a whole segment.
rule!(error_brace: err(&["/a/x{id}"]) => E::MalformedSegment { segment: "x{id}".into() });
// A parameter name must be an identifier.
rule!(error_name: err(&["/{1x}"]) => E::InvalidParamName { segment: "{1x}".into() });
// A catch-all must be the last segment.
rule!(error_catch_all: err(&["/a/*/b"]) => E::CatchAllNotLast { segment: "*".into() });
// A parameter name may appear once per pattern.
rule!(error_dup_param: err(&["/{i}/{i}"]) => E::DuplicateParam { name: "i".into() });
// At most MAX_PARAMS (8) parameters per pattern, catch-all included.
rule!(error_params: err(&["/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/*"])
    => E::TooManyParams { count: 9 });
// At most MAX_SEGMENTS segments per pattern.
rule!(error_segments: err(&[&"/a".repeat(MAX_SEGMENTS + 1)])
    => E::TooManySegments { count: MAX_SEGMENTS + 1 });
// The same pattern twice conflicts, naming the first.
rule!(error_duplicate: err(&["/a/{i}", "/a/{i}"])
    => E::Duplicate { existing: "/a/{i}".into() });
// Patterns of the same shape conflict whatever their parameter names.
rule!(error_shape: err(&["/{i}/{r*}", "/{k}/*"])
    => E::Duplicate { existing: "/{i}/{r*}".into() });
// param_names lists names in order, "*" for the anonymous catch-all.
rule!(names_in_order: param_names("/a/{x}/b/{y}/*").unwrap() => ["x", "y", "*"]);

// Every one of 10,000 generated routes is found with its own value.
#[test]
fn many_routes_all_found() {
    let shapes = ["/o/{id}", "/c/{id}/inv", "/s/{r*}", "/v1/items"];
    let paths = ["/o/7", "/c/7/inv", "/s/a/b", "/v1/items"];
    let mut b = RouteTableBuilder::new();
    for i in 0..10_000 {
        b.insert(&format!("/d{}{}", i / 4, shapes[i % 4]), i)
            .unwrap();
    }
    let (t, path) = (b.build(), |i: usize| format!("/d{}{}", i / 4, paths[i % 4]));
    let found = (0..10_000).filter(|&i| t.lookup(&path(i)).map(|m| *m.value) == Some(i));
    assert_eq!(found.count(), 10_000);
}

// Hostile paths never panic, and miss where no pattern fits them.
#[test]
fn weird_paths_miss() {
    let (long, many) = ("/a".repeat(100_000), "/x".repeat(1000));
    let weird = ["", "-", "*", "//", "/%2F", "/a/x/b//", &long, &many];
    assert_eq!(hits(&["/", "/a/{x}", "/a/{x}/b/"], &weird), [None; 8]);
}

// Odd bytes are matched raw, like any others.
rule!(weird_paths_hit: hits(&["/a/{x}", "/s/*", "/é/{p}"], &["/a/%2F", "/é/ü", "/s/\0/é"])
    => [Some(0), Some(2), Some(1)]);
