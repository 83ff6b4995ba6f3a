//! Addresses, shared by every stage: CIDR sets and network rules
//! ([`cidr`]) and the client as one connection sees it ([`peer`]).
//!
//! A leaf: imports nothing else of the crate.

pub mod cidr;
pub mod peer;
