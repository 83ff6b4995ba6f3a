//! `portcullis-load`: Portcullis's load-test harness.
//!
//! One binary, four jobs: drive load at a URL (closed or open loop, HTTP/1.1
//! over plain TCP or TLS, one monoio runtime per thread) and report it; serve as
//! the fast upstream that scenarios proxy to; hold idle keep-alive connections;
//! and run scenarios that put the gateway, nginx and HAProxy under the same load.
//!
//! Data flows one way: `cli` → `spec` (what to run) → `engine` (threads,
//! runtimes, connection loops, using `request`, `transport`, `tls`, `exchange`)
//! → `recorder` (per-thread figures, merged) → `report` (table, JSON, HTML).
//! `scenario` drives whole comparisons by running this binary as a child.

#![forbid(unsafe_code)]

mod cli;
mod engine;
mod exchange;
mod idle;
mod progress;
mod recorder;
mod report;
mod request;
mod runtime;
mod scenario;
mod spec;
mod tls;
mod transport;
mod upstream;

fn main() -> std::process::ExitCode {
    cli::main()
}
