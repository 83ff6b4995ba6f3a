//! Moving to Portcullis from another gateway: `portcullis import SOURCE`
//! reads that gateway's exported configuration and writes a Portcullis config,
//! with a report of what could not be carried over.
//!
//! Beside the request's way, like `check`: it reads files and writes text,
//! never serves, and uses the gateway's own config types and compilers only
//! to check what it writes. Nothing on the request path imports it.

pub mod oci;
