#!/usr/bin/env bash
# Builds the Debian package from [package.metadata.deb] in Cargo.toml with
# scripts/build-deb.py (dpkg-deb over the built binary; nothing to install
# first). Prints the path of the .deb on its last line.
#
#   scripts/package-deb.sh          release build (what you install on servers)
#   scripts/package-deb.sh --dev    packages the debug build instead, for CI's
#                                   package check only (fast; never ship it)
set -euo pipefail
cd "$(dirname "$0")/.."

out=target/debian
mkdir -p "$out"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
if [[ ${1:-} == --dev ]]; then
    cargo build --locked --bin portcullis >&2
    scripts/build-deb.py target/debug/portcullis "$out/portcullis-dev-check.deb" --fast
else
    cargo build --release --locked --bin portcullis >&2
    scripts/build-deb.py target/release/portcullis "$out/portcullis_${version}-1_${arch}.deb"
fi
