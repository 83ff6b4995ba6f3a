#!/usr/bin/env bash
# The cost of cluster mode, in the same run as a single node: both sides run the
# usage-plans configuration (client token, entitlement rate limit, daily quota,
# deployment rate limit; limits far above the load); B adds [cluster] with a local
# redis-server that this script starts, plus a second, idle gateway node on the
# same Redis (so membership counts two live nodes). Redis, the second node and
# everything gateway-ab.sh starts are stopped at the end, by PID.
#
#   loadtest/cluster-ab.sh                         # 5 rounds x 10 s
#   ROUNDS=1 DURATION=3s loadtest/cluster-ab.sh    # quick check
#
# Besides gateway-ab.sh's table (requests per proxy-CPU-second, latency), it
# prints the Redis commands per admitted request (INFO commandstats: every
# command Redis ran, scripts included, over B's requests).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=loadtest/lib.sh
source "$HERE/lib.sh"
ensure_tools "redis-server:redis-server" "redis-cli:redis-tools"

TOKEN=bench-token-0123456789abcdef
REDIS_PORT=${REDIS_PORT:-9379}
NODE2_PORT=${NODE2_PORT:-8181}
NODE2_ADMIN=${NODE2_ADMIN:-9912}
for p in "$REDIS_PORT" "$NODE2_PORT" "$NODE2_ADMIN"; do
    port_open "$p" && die "127.0.0.1:$p is already in use"
done

WORK=$(mktemp -d)
REDIS_PID="" NODE2_PID=""
finish() {
    local rc=$? pids=()
    [[ -n $NODE2_PID ]] && pids+=("$NODE2_PID")
    [[ -n $REDIS_PID ]] && pids+=("$REDIS_PID")
    ((${#pids[@]})) && stop_pids "${pids[@]}"
    rm -rf "$WORK"
    exit "$rc"
}
trap finish EXIT

redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK" --save '' --appendonly no \
    --maxmemory-policy noeviction >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 100); do
    [[ $(redis-cli -p "$REDIS_PORT" PING 2>/dev/null) == PONG ]] && break
    sleep 0.1
done
[[ $(redis-cli -p "$REDIS_PORT" PING 2>/dev/null) == PONG ]] || die "redis-server did not start"

usage=$'[deployments.usage_plans]\ntoken_locations = ["query:api_key"]\n'
usage+=$'[deployments.rate_limit]\nrequests_per_second = 10000000\nkey = "total"\n'
usage+=$'[[usage_plans]]\nname = "gold"\n[[usage_plans.entitlements]]\nname = "bench"\ndeployments = ["bench"]\n'
usage+=$'rate_limit = { requests_per_second = 10000000 }\nquota = { limit = 1000000000000, period = "day" }\n'
usage+=$'[[subscribers]]\nname = "bench"\nusage_plans = ["gold"]\nclients = [{ name = "wrk", token = "'"$TOKEN"$'" }]\n'
cluster=$'[cluster]\nstore = "redis://127.0.0.1:'"$REDIS_PORT"$'"\nnode_name = "bench-1"\n'

# The second node: same limits, its own ports, idle.
BIN=${PORTCULLIS_BIN:-$(cd "$HERE/.." && pwd)/target/release/portcullis}
{
    bench_gateway_toml "$NODE2_PORT" 9 "$NODE2_ADMIN"
    printf '\n%s\n%s' "$usage" "${cluster//bench-1/bench-2}"
} >"$WORK/node2.toml"
(cd "$WORK" && exec "$BIN" run --config node2.toml --workers 1 --no-watch >"$WORK/node2.log" 2>&1) &
NODE2_PID=$!

redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
export BENCH_PATH="/bench/hello?api_key=$TOKEN"
export A_LABEL="single node" B_LABEL="cluster"
export A_EXTRA_TOML="$usage" B_EXTRA_TOML="$usage$cluster"
export OUT_NAME=${OUT_NAME:-cluster-ab}
"$HERE/gateway-ab.sh" "$@"

# Redis commands per admitted request on B (the idle node's heartbeats included).
commands=$(redis-cli -p "$REDIS_PORT" INFO commandstats | awk -F'[=,:]' '/^cmdstat_/ && !/cmdstat_(info|config|ping)/ {n += $3} END {print n + 0}')
csv="$(cd "$HERE/.." && pwd)/loadtest/out/$OUT_NAME-rounds.csv"
requests=$(awk -F, 'NR > 1 && $3 == "B" {n += $15} END {print n + 0}' "$csv")
{
    echo
    echo "Redis: $commands commands for $requests requests on the cluster side ($(awk -v c="$commands" -v r="$requests" 'BEGIN {if (r) printf "%.5f", c / r; else print "n/a"}') per request)."
    redis-cli -p "$REDIS_PORT" INFO commandstats | grep -E 'cmdstat_(evalsha|eval|script)' || true
} | tee -a "$(dirname "$csv")/$OUT_NAME.md"
