//! The running process: [`server`] binds listeners, starts one [`worker`] per
//! core and waits for signals; each worker [`accept`]s connections (the
//! listener's network rule and per-address cap in [`admission`]), [`open`]s
//! them (TLS handshake) and runs each
//! connection's keep-alive loop ([`conn`]) and plans every request
//! ([`dispatch`]: parse → route → policies → back end; the upstream head in
//! `upstream_plan`), relaying an accepted WebSocket both ways
//! ([`websocket`]). The [`control`]
//! thread watches the config files and [`reload`] recompiles and publishes
//! snapshots; the [`resolver`] thread asks back-end host names again on
//! their TTL and has the servers follow their addresses.
//!
//! The top of the crate: it drives every other stage and nothing below
//! imports it.

pub mod accept;
pub mod admission;
pub mod answer;
pub mod conn;
pub mod control;
pub mod dispatch;
mod head_reader;
pub mod open;
pub mod plan;
pub mod relay;
pub mod reload;
pub mod request_log;
pub mod resolver;
pub mod scope;
pub mod server;
pub mod sockets;
pub mod start_error;
mod upstream_plan;
pub mod websocket;
pub mod worker;
pub mod worker_ctx;
