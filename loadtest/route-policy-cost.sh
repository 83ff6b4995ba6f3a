#!/usr/bin/env bash
# Instructions per proxied request of the gateway's worker thread (callgrind,
# epoll driver, one worker, counters zeroed after a warm-up request, wrk -t1 -c8
# for 8 s) on one route in four forms: no policy, validation of two required
# header fields, validation with a pattern and allowed values, and a dynamic
# back end chosen by a header. Same binary for all four, so the differences are
# what the policies cost.
#
#   loadtest/route-policy-cost.sh [path/to/portcullis]   # default target/release/portcullis
#
# Needs valgrind, wrk and the load harness's upstream (cargo build --release -p portcullis-load).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/release/portcullis}")
LOAD=$(realpath "${LOAD_BIN:-target/release/portcullis-load}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
route() {
    cat <<TOML
[[listeners]]
name = "public"
address = "127.0.0.1:18801"

[[deployments]]
name = "bench"
listener = "public"
path_prefix = "/bench"

[[deployments.routes]]
path = "/hello"
methods = ["GET"]
$1
TOML
}
plain='backend = { type = "http", url = "http://127.0.0.1:18900/hello" }'
route "$plain" > "$work/none.toml"
route "$plain
validation = { headers = [{ name = \"X-Tenant\" }, { name = \"X-Channel\" }] }" > "$work/required.toml"
route "$plain
validation = { headers = [{ name = \"X-Tenant\", pattern = \"[a-z]{3,8}\" }, { name = \"X-Channel\", values = [\"web\", \"mobile\"] }] }" > "$work/patterns.toml"
route '[deployments.routes.backend]
type = "dynamic"
selector = "request.headers[X-Tenant]"
[[deployments.routes.backend.cases]]
keys = ["acme", "beta"]
backend = { type = "http", url = "http://127.0.0.1:18900/hello" }
[[deployments.routes.backend.cases]]
default = true
backend = { type = "stock", status = 404 }' > "$work/dynamic.toml"
for form in none required patterns dynamic; do
    "$LOAD" upstream --listen 127.0.0.1:18900 --for 60s > /dev/null 2>&1 &
    up=$!
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/cg.$form" \
        "$BIN" run --config "$work/$form.toml" --workers 1 --driver epoll --no-watch \
        > "$work/gw.$form.log" 2>&1 &
    gw=$!
    for _ in $(seq 1 100); do
        curl -s -o /dev/null -H 'X-Tenant: acme' -H 'X-Channel: web' http://127.0.0.1:18801/bench/hello && break
        sleep 0.2
    done
    callgrind_control -z "$gw" > /dev/null 2>&1
    wrk -t1 -c8 -d8s -H 'X-Tenant: acme' -H 'X-Channel: web' http://127.0.0.1:18801/bench/hello > "$work/wrk.$form" 2>&1
    kill -TERM "$gw"; wait "$gw" || true
    kill "$up"; wait "$up" 2>/dev/null || true
    requests=$(grep -oE '^ +[0-9]+ requests' "$work/wrk.$form" | grep -oE '[0-9]+')
    # The busiest thread is the worker.
    ir=$(for f in "$work/cg.$form"-*; do
        callgrind_annotate "$f" 2>/dev/null | grep -m1 'PROGRAM TOTALS' | grep -oE '^[0-9,]+' | tr -d ,
    done | sort -n | tail -1)
    echo "$form requests=$requests instructions_per_request=$((ir / requests))"
done
