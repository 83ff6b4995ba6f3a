#!/usr/bin/env bash
# Request latency while the config is being reloaded, next to latency without
# reloads, in the same run: a gateway with 1,000 routes and 10,000 subscribers
# (the bench route itself is plain proxying) serves wrk while, in the
# "reloading" runs, the config file is rewritten every RELOAD_EVERY seconds,
# alternating two versions that differ by one route (write-then-rename, as
# editors save). Every rewrite is a full parse + compile + publish.
#
#   loadtest/reload-latency.sh                         # 3 rounds x 10 s per mode
#   ROUNDS=1 DURATION=3s loadtest/reload-latency.sh    # quick check
#
# Layout (2 cores): gateway (workers and control thread) pinned to CPU 0, so a
# reload competes with the worker for its core; upstream nginx and wrk on CPU 1.
# Output: loadtest/out/reload-latency.md.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=loadtest/lib.sh
source "$HERE/lib.sh"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
RELOAD_EVERY=${RELOAD_EVERY:-0.25}
SUBSCRIBERS=${SUBSCRIBERS:-10000}
ROUTES=${ROUTES:-1000}
UPSTREAM_PORT=${UPSTREAM_PORT:-9200}
GATEWAY_PORT=${GATEWAY_PORT:-8280}
ADMIN_PORT=${ADMIN_PORT:-9921}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BIN=${PORTCULLIS_BIN:-$ROOT/target/release/portcullis}

ensure_tools nginx:nginx-light wrk:wrk
[[ -x $BIN ]] || (cd "$ROOT" && cargo build --release)
OUT="$HERE/out"
mkdir -p "$OUT"
RUN=$(mktemp -d)
PIDS=()
cleanup() { stop_pids "${PIDS[@]}"; rm -rf "$RUN"; }
trap cleanup EXIT
raise_nofile

# Two config versions: the bench route, ROUTES-1 stock routes in 50
# deployments, SUBSCRIBERS subscribers; version 2 has one more route.
write_config() { # file extra_route(0|1)
    {
        bench_gateway_toml "$GATEWAY_PORT" "$UPSTREAM_PORT" "$ADMIN_PORT"
        for ((r = 1; r < ROUTES; r++)); do
            if ((r % 20 == 1)); then
                printf '\n[[deployments]]\nname = "d%d"\nlistener = "public"\npath_prefix = "/d%d"\n' "$r" "$r"
            fi
            printf '[[deployments.routes]]\npath = "/r%d/{id}"\nmethods = ["GET"]\nbackend = { type = "stock", status = 200, body = "r%d" }\n' "$r" "$r"
        done
        if (($2)); then printf '[[deployments.routes]]\npath = "/extra"\nbackend = { type = "stock", status = 204 }\n'; fi
        printf '\n[[usage_plans]]\nname = "gold"\n[[usage_plans.entitlements]]\nname = "all"\ndeployments = ["d1"]\nrate_limit = { requests_per_second = 100 }\n'
        for ((s = 0; s < SUBSCRIBERS; s++)); do
            printf '[[subscribers]]\nname = "s%d"\nusage_plans = ["gold"]\nclients = [{ name = "c", token = "token-%020d" }]\n' "$s" "$s"
        done
    } >"$1"
}
write_config "$RUN/v1.toml" 0
write_config "$RUN/v2.toml" 1
cp "$RUN/v1.toml" "$RUN/gateway.toml"
"$BIN" check --config "$RUN/gateway.toml" >/dev/null

write_upstream_nginx_conf "$RUN" "$UPSTREAM_PORT"
taskset -c "$LOAD_CPU" nginx -p "$RUN" -c "$RUN/upstream.conf" -e "$RUN/upstream-error.log" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$UPSTREAM_PORT" "${PIDS[-1]}" || die "upstream nginx did not start"
taskset -c "$PROXY_CPU" "$BIN" run --config "$RUN/gateway.toml" --workers 1 >"$RUN/gateway.log" 2>&1 &
GW_PID=$!
PIDS+=("$GW_PID")
wait_port "$GATEWAY_PORT" "$GW_PID" 30 || { tail "$RUN/gateway.log" >&2; die "gateway did not start"; }

applied() {
    http_body "$ADMIN_PORT" /metrics | awk '/^portcullis_config_reloads_total\{result="applied"\}/ {print $2}'
}

machine_info >"$OUT/reload-latency.md.tmp"
printf 'gateway: %s\n\n' "$("$BIN" --version)" >>"$OUT/reload-latency.md.tmp"
url="http://127.0.0.1:$GATEWAY_PORT/bench/hello"
taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s "$url" >/dev/null
declare -A P99 P50 RPS
for ((round = 1; round <= ROUNDS; round++)); do
    for mode in quiet reloading; do
        before=$(applied)
        reloader=
        if [[ $mode == reloading ]]; then
            (
                v=2
                while :; do
                    cp "$RUN/v$v.toml" "$RUN/gateway.toml.tmp"
                    mv "$RUN/gateway.toml.tmp" "$RUN/gateway.toml"
                    v=$((3 - v))
                    sleep "$RELOAD_EVERY"
                done
            ) &
            reloader=$!
        fi
        out=$(timeout 60 taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$url")
        if [[ -n $reloader ]]; then kill "$reloader"; wait "$reloader" 2>/dev/null || true; fi
        sleep 1
        after=$(applied)
        parse_wrk "$out" || die "could not parse wrk output"
        ((WRK_NON2XX + WRK_SOCKERR == 0)) || log "round $round $mode: $WRK_NON2XX non-2xx, $WRK_SOCKERR socket errors"
        P99[$mode]+="$WRK_P99_MS " P50[$mode]+="$WRK_P50_MS " RPS[$mode]+="$WRK_RPS "
        printf 'round %d %-9s %8s req/s  p50 %7s ms  p99 %7s ms  reloads applied %d  errors %d\n' \
            "$round" "$mode" "$WRK_RPS" "$WRK_P50_MS" "$WRK_P99_MS" "$((after - before))" "$((WRK_NON2XX + WRK_SOCKERR))" |
            tee -a "$OUT/reload-latency.md.tmp"
    done
done
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
{
    echo
    echo "| mode | req/s | p50 ms | p99 ms |"
    echo "|---|---:|---:|---:|"
    for mode in quiet reloading; do
        echo "| $mode | $(median "${RPS[$mode]}") | $(median "${P50[$mode]}") | $(median "${P99[$mode]}") |"
    done
} | tee -a "$OUT/reload-latency.md.tmp"
mv "$OUT/reload-latency.md.tmp" "$OUT/reload-latency.md"
