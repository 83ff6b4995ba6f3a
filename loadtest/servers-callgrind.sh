#!/usr/bin/env bash
# Instructions per proxied request (callgrind) of a plain proxy route over a back end of
# one server (A) and of three servers (B, round robin), the same upstream nginx listening
# on three ports, in the same run: the cost of server lists and balancing per request.
#
#   loadtest/servers-callgrind.sh                 # 10 s of wrk -t1 -c8 per side
#   DURATION=5s loadtest/servers-callgrind.sh
#
# Method as in docs/performance.md ("User-space instructions per request"): one worker on
# the epoll driver under valgrind, counters zeroed after a warm-up and dumped after the
# run, divided by the requests wrk completed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=loadtest/lib.sh
source "$HERE/lib.sh"

DURATION=${DURATION:-10s}
BIN=${PORTCULLIS_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/portcullis}
UP=${UPSTREAM_PORT:-9200}
GW=${GATEWAY_PORT:-8280}
ensure_tools "nginx:nginx-light|nginx" "wrk:wrk" "valgrind:valgrind"
[[ -x $BIN ]] || die "no release binary at $BIN (cargo build --release)"

RUN=$(mktemp -d)
PIDS=()
trap 'stop_pids "${PIDS[@]}"; [[ -n ${KEEP:-} ]] || rm -rf "$RUN"' EXIT

{
    nginx_preamble "$RUN" upstream
    for port in "$UP" "$((UP + 1))" "$((UP + 2))"; do
        printf '    server { listen 127.0.0.1:%s; location = /hello { default_type text/plain; return 200 "hello\\n"; } }\n' "$port"
    done
    echo "}"
} >"$RUN/upstream.conf"
nginx -p "$RUN" -c "$RUN/upstream.conf" -e "$RUN/upstream-error.log" >"$RUN/nginx.out" 2>&1 &
PIDS+=($!)
wait_port "$UP" "${PIDS[0]}" || die "upstream nginx did not start"

gateway_toml() { # backend
    cat <<TOML
[[listeners]]
name = "public"
address = "127.0.0.1:$GW"

[[deployments]]
name = "bench"
listener = "public"
path_prefix = "/bench"

[[deployments.routes]]
path = "/hello"
methods = ["GET"]
backend = $1
TOML
}

measure() { # label backend
    local label=$1 out requests total
    gateway_toml "$2" >"$RUN/gateway.toml"
    valgrind --tool=callgrind --callgrind-out-file="$RUN/cg.out" \
        "$BIN" run --config "$RUN/gateway.toml" --workers 1 --driver epoll >"$RUN/gw.log" 2>&1 &
    local pid=$!
    wait_port "$GW" "$pid" 120 || { cat "$RUN/gw.log" >&2; die "gateway did not start ($label)"; }
    # Listening is not yet serving under valgrind: wait for a proxied answer.
    local i
    for ((i = 0; i < 600; i++)); do
        [[ $(http_get "$GW" /bench/hello 2>/dev/null | head -n 1) == "HTTP/1.1 200"* ]] && break
        sleep 0.2
    done
    wrk -t1 -c8 -d2s "http://127.0.0.1:$GW/bench/hello" >/dev/null
    callgrind_control -z "$pid" >/dev/null
    out=$(wrk -t1 -c8 -d"$DURATION" "http://127.0.0.1:$GW/bench/hello")
    callgrind_control -d "$pid" >/dev/null
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    kill -TERM "$pid"
    wait "$pid" || true
    total=$(cat "$RUN"/cg.out.* 2>/dev/null | awk '/^summary:/ {s += $2} END {print s + 0}')
    rm -f "$RUN"/cg.out*
    printf '%s: %s requests, %s instructions, %s per request\n' "$label" "$requests" "$total" \
        "$(awk -v t="$total" -v r="$requests" 'BEGIN {printf "%.0f", t / r}')"
}

one="{ type = \"http\", url = \"http://127.0.0.1:$UP/hello\" }"
three="{ type = \"http\", servers = [{ url = \"http://127.0.0.1:$UP/hello\" }, { url = \"http://127.0.0.1:$((UP + 1))/hello\" }, { url = \"http://127.0.0.1:$((UP + 2))/hello\" }] }"
for round in 1 2; do
    measure "round $round, 1 server " "$one"
    measure "round $round, 3 servers" "$three"
done
