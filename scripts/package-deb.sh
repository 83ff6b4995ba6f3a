#!/usr/bin/env bash
# Builds the Debian package with cargo-deb (installed with `cargo install
# cargo-deb --locked` if missing) from [package.metadata.deb] in Cargo.toml.
# Prints the path of the .deb on its last line.
#
#   scripts/package-deb.sh          release build (what you install on servers)
#   scripts/package-deb.sh --dev    packages the debug build instead, for CI's
#                                   package check only (fast; never ship it)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "installing cargo-deb..." >&2
    cargo install cargo-deb --locked >&2
fi

out=target/debian
mkdir -p "$out"
if [[ ${1:-} == --dev ]]; then
    cargo build --locked --bin portcullis >&2
    deb="$out/portcullis-dev-check.deb"
    cargo deb --no-build --profile dev --fast --no-strip -o "$deb" 2> >(grep -v "dev profile is not supported\|To enable debug symbols" >&2) >&2
else
    cargo build --release --locked --bin portcullis >&2
    cargo deb --no-build --locked >&2
    deb=$(ls -t "$out"/portcullis_*.deb | head -n1)
fi
echo "$deb"
