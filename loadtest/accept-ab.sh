#!/usr/bin/env bash
# New-connection load on two gateway binaries, interleaved rounds: what accepting costs.
# Each request comes on a new connection (`Connection: close`), answered by a stock route,
# so accept, the first read and the close dominate.
#
#   loadtest/accept-ab.sh A_BIN B_BIN        # 5 rounds x 5 s each
#   ROUNDS=1 DURATION=2s loadtest/accept-ab.sh A_BIN B_BIN
#   KEEPALIVE=1 loadtest/accept-ab.sh A_BIN B_BIN   # keep-alive instead: the request path
#
# Layout (2 cores): gateway (--workers 1) on CPU 0, wrk (-t1 -c32) on CPU 1. Reports the
# median requests per second and requests per gateway-CPU-second (utime + stime from
# /proc/PID/stat) of each binary.
set -euo pipefail

a_bin=$1
b_bin=$2
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-8190}
KEEPALIVE=${KEEPALIVE:-0}
close=(-H "Connection: close")
[[ $KEEPALIVE == 1 ]] && close=()

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
work=$(mktemp -d)
pid=
cleanup() {
    if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/gw.toml" <<TOML
admin = ""
[[listeners]]
name = "bench"
address = "127.0.0.1:$PORT"
max_connections_per_ip = 0
[[deployments]]
name = "bench"
listener = "bench"
[[deployments.routes]]
path = "/hello"
backend = { type = "stock", status = 200, body = "hello\n" }
TOML

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One round: prints "req_per_s req_per_cpu_s".
round() {
    local bin=$1 before after out rps ticks hz
    taskset -c 0 "$bin" run --config "$work/gw.toml" --workers 1 --no-watch 2>"$work/gw.log" &
    pid=$!
    for _ in $(seq 100); do grep -q "started: serving" "$work/gw.log" && break; sleep 0.05; done
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"$DURATION" "${close[@]}" "http://127.0.0.1:$PORT/hello")
    after=$(cpu_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    ticks=$((after - before))
    hz=$(getconf CLK_TCK)
    local errors
    errors=$(grep -o 'Socket errors.*\|Non-2xx.*' <<<"$out" || true)
    [[ -z $errors ]] || echo "  ($bin: $errors)" >&2
    awk -v r="$rps" -v t="$ticks" -v hz="$hz" -v d="${DURATION%s}" \
        'BEGIN { printf "%.0f %.0f\n", r, (t > 0 ? r * d / (t / hz) : 0) }'
    sleep 1
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

: >"$work/a"; : >"$work/b"
for r in $(seq "$ROUNDS"); do
    round "$a_bin" >>"$work/a"
    round "$b_bin" >>"$work/b"
    echo "round $r: A $(tail -1 "$work/a")  B $(tail -1 "$work/b")" >&2
done
printf '| binary | req/s | req per gateway-CPU-s |\n|---|---:|---:|\n'
for side in a b; do
    bin=$a_bin; [[ $side == b ]] && bin=$b_bin
    printf '| %s | %s | %s |\n' "$bin" "$(cut -d' ' -f1 "$work/$side" | median)" "$(cut -d' ' -f2 "$work/$side" | median)"
done
