//! Fuzz harness support: the entry points each target drives live in
//! [`entry_points`], shared with the stable test `tests/no_panic_inputs.rs`.

pub mod entry_points;
