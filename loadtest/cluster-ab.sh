#!/usr/bin/env bash
# The cost of cluster mode, in the same run as a single node: a thin wrapper
# around the load harness's `cluster` scenario (loadtest/scenarios/cluster.toml),
# which starts a local redis-server, the single node, and two cluster nodes on
# that Redis (the second idle), runs interleaved rounds, and stops them all by
# PID. Besides requests per proxy-CPU-second and latency, its table shows the
# Redis commands per admitted request and the admitted requests per round trip.
#
#   loadtest/cluster-ab.sh                          # the scenario's 5 rounds x 5 s
#   ROUNDS=1 DURATION=3s loadtest/cluster-ab.sh     # quick check
#   loadtest/cluster-ab.sh --proxy-cpus 0 --load-cpus 1-3   # more flags go to the harness
#
# Knobs: ROUNDS, DURATION, LOAD_BIN (default: portcullis-load in the release
# target directory), PORTCULLIS_BIN (the gateway; default: next to LOAD_BIN).
# Output: loadtest/out/cluster/{table.md,result.json,report.html}.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=loadtest/lib.sh
source "$HERE/lib.sh"
ensure_tools "redis-server:redis-server"

LOAD_BIN=${LOAD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/portcullis-load}
[[ -x $LOAD_BIN ]] || die "no harness at $LOAD_BIN (cargo build --release -p portcullis -p portcullis-load)"
args=(scenario cluster)
[[ -n ${ROUNDS:-} ]] && args+=(--rounds "$ROUNDS")
[[ -n ${DURATION:-} ]] && args+=(--duration "$DURATION")
[[ -n ${PORTCULLIS_BIN:-} ]] && args+=(--gateway-bin "$PORTCULLIS_BIN")
cd "$ROOT"
exec "$LOAD_BIN" "${args[@]}" "$@"
