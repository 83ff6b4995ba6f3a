#!/usr/bin/env bash
# The test suite: formatting, lints, unit and integration tests (real sockets on
# 127.0.0.1, upstream servers started by the tests), and a compile check of the
# benchmarks. Needs only a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --all-targets --locked
