#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input (the cargo-fuzz crate in fuzz/), each
# target for a bounded time:
#
#   scripts/fuzz.sh                    every target, 30 s each
#   scripts/fuzz.sh TARGET [SECONDS]   one target (SECONDS default 30)
#   scripts/fuzz.sh all SECONDS        every target, SECONDS each
#
# Installs a nightly toolchain and cargo-fuzz when they are missing (the
# gateway itself builds on stable; CI does not run this). The committed seeds
# in fuzz/corpus/TARGET are only read; what a run learns goes to
# fuzz/work/corpus/TARGET (ignored by git) and is reused by the next run. A
# crash or panic stops the run with its input saved in fuzz/artifacts/TARGET/
# and this script exits non-zero; reproduce it with
#   cd fuzz && cargo +nightly fuzz run -s none -a TARGET artifacts/TARGET/crash-...
# Builds use debug assertions (overflow checks) and no sanitizer, since the
# gateway forbids unsafe code; FUZZ_SANITIZER=address brings AddressSanitizer.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

TARGETS=(request_head chunked response_head query jwt config cidr quota_state)
target=${1:-all}
seconds=${2:-30}
sanitizer=${FUZZ_SANITIZER:-none}

if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: SECONDS must be a positive whole number, not \`$seconds\`" >&2
    exit 2
fi
if [ "$target" = all ]; then
    selected=("${TARGETS[@]}")
elif [[ " ${TARGETS[*]} " == *" $target "* ]]; then
    selected=("$target")
else
    echo "fuzz.sh: unknown target \`$target\` (one of: all ${TARGETS[*]})" >&2
    exit 2
fi

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build --sanitizer "$sanitizer" --debug-assertions
for name in "${selected[@]}"; do
    echo "== fuzzing $name for ${seconds}s"
    mkdir -p "work/corpus/$name"
    options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    # Keys, field names and syntax the mutations splice in, where a target has them.
    if [ -f "dict/$name.dict" ]; then
        options+=(-dict="dict/$name.dict")
    fi
    cargo +nightly fuzz run --sanitizer "$sanitizer" --debug-assertions "$name" \
        "work/corpus/$name" "corpus/$name" -- "${options[@]}"
done
