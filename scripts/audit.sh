#!/usr/bin/env bash
# Audits Cargo.lock (and the load harness's and the fuzz crate's lockfiles)
# against the RustSec advisory database with cargo-audit (installed with
# `cargo install cargo-audit --locked` when missing). The database is the
# snapshot in .ci/advisory-db (its commit in SNAPSHOT): the machines that run
# CI reach crates.io but not the database's git host. Refresh it by replacing
# its crates/ and rust/ folders with those of a newer copy of
# rustsec/advisory-db. Ignored advisories, each with its reason: .cargo/audit.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo audit --version >/dev/null 2>&1; then
    echo "installing cargo-audit..." >&2
    cargo install cargo-audit --locked >&2
fi
echo "audit: advisory database $(cat .ci/advisory-db/SNAPSHOT)"
cargo audit --no-fetch --db .ci/advisory-db --deny unsound
cargo audit --no-fetch --db .ci/advisory-db --deny unsound --file fuzz/Cargo.lock
