//! Step 4 of a request's way: which route a path leads to. [`table`] is the
//! per-listener path table (exact segments, `{param}` segments, prefixes) and
//! the path-parameter grammar every other stage uses.
//!
//! A leaf: pure data structures, no config and no I/O.

pub mod selector;
pub mod table;
