//! Addresses, shared by every stage: CIDR sets and network rules
//! ([`cidr`]), the client as one connection sees it ([`peer`]), and DNS
//! lookups of back-end host names ([`dns`]).
//!
//! A leaf: imports nothing else of the crate.

pub mod cidr;
pub mod dns;
pub mod peer;
