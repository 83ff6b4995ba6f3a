//! Time, shared by every stage: the process clock all workers read
//! ([`clock`]), the UTC calendar ([`calendar`]) and the per-worker coarse
//! timers that bound every wait ([`deadline`]).
//!
//! A leaf: imports nothing else of the crate.

pub mod calendar;
pub mod clock;
pub mod deadline;
