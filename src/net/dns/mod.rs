//! DNS for back-end host names: the wire format ([`wire`], through
//! `hickory-proto`, no async runtime), a small blocking client over UDP with
//! TCP on truncation ([`client`]), and what the system files say
//! ([`system`]: /etc/resolv.conf servers, /etc/hosts names).
//!
//! Used off the request path only (the resolver thread, and the threads that
//! compile a configuration). When to ask, and what to do with the answer,
//! belongs to `crate::snapshot::resolver`.

pub mod client;
pub mod system;
pub mod wire;
