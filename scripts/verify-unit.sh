#!/usr/bin/env bash
# Checks config/portcullis.service (or the unit given) with systemd's own
# tools: `systemd-analyze verify` must report nothing, and `systemd-analyze
# security` must rate its exposure at or below MAX_EXPOSURE (default 2.5 of
# 10). Installs Debian's `systemd` package if systemd-analyze is missing.
#
# verify checks that ExecStart's binary exists, so the unit is checked as a
# copy whose /usr/bin/portcullis points at BINARY (default: the debug build,
# built if needed); nothing else in it is changed.
#
#   scripts/verify-unit.sh [UNIT [BINARY]]
set -euo pipefail
cd "$(dirname "$0")/.."

unit=${1:-config/portcullis.service}
binary=${2:-target/debug/portcullis}
max_exposure=${MAX_EXPOSURE:-2.5}

if ! command -v systemd-analyze >/dev/null; then
    echo "installing systemd-analyze (Debian package systemd)..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
[[ -x $binary ]] || cargo build --locked
binary=$(realpath "$binary")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s#/usr/bin/portcullis#$binary#g" "$unit" >"$work/portcullis.service"

# verify prints problems and may still exit 0: any output is a failure.
out=$(systemd-analyze verify "$work/portcullis.service" 2>&1) || {
    echo "$out"
    echo "verify-unit: systemd-analyze verify failed" >&2
    exit 1
}
if [[ -n $out ]]; then
    echo "$out"
    echo "verify-unit: systemd-analyze verify reported problems" >&2
    exit 1
fi
echo "verify-unit: systemd-analyze verify: no problems"

threshold=$(awk -v m="$max_exposure" 'BEGIN { printf "%d", m * 10 }')
security=$(systemd-analyze security --offline=true --threshold="$threshold" "$work/portcullis.service" 2>&1) || {
    echo "$security" | tail -20
    echo "verify-unit: exposure above $max_exposure" >&2
    exit 1
}
echo "verify-unit: $(echo "$security" | grep 'Overall exposure level')"
