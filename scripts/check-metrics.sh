#!/usr/bin/env bash
# Runs Prometheus's own linter over the gateway's /metrics output:
# installs promtool (scripts/install-test-deps.sh) if missing, starts the
# gateway on loopback with a stock route and a proxied route, sends a few
# requests, lints the exposition with `promtool check metrics`, and stops
# everything it started. Exits non-zero if promtool reports a problem.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v promtool >/dev/null || scripts/install-test-deps.sh promtool
[[ -x target/release/portcullis ]] || cargo build --release

run=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$run"
}
trap cleanup EXIT

# A tiny upstream: Python's http.server on a free loopback port.
mkdir -p "$run/www" && echo ok >"$run/www/ok"
upstream_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$run/www" && exec python3 -m http.server "$upstream_port" --bind 127.0.0.1 >/dev/null 2>&1) &
pids+=($!)

cat >"$run/gateway.toml" <<TOML
admin = "127.0.0.1:0"
[access_log]
path = "$run/access.log"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
[[deployments]]
name = "demo"
listener = "public"
path_prefix = "/demo"
[[deployments.routes]]
path = "/hello"
backend = { type = "stock", status = 200, body = "hi" }
[[deployments.routes]]
path = "/up/{rest*}"
backend = { type = "http", url = "http://127.0.0.1:$upstream_port/" }
TOML
target/release/portcullis run --config "$run/gateway.toml" --workers 1 2>"$run/gateway.log" &
pids+=($!)
for _ in $(seq 50); do
    grep -q admin_address "$run/gateway.log" && grep -q "listening" "$run/gateway.log" && break
    sleep 0.1
done
address=$(grep -o 'listening listener=public address=[0-9.:]*' "$run/gateway.log" | sed 's/.*address=//')
admin=$(grep -o 'admin_address=[0-9.:]*' "$run/gateway.log" | sed 's/admin_address=//')
for path in /demo/hello /demo/hello /demo/missing /demo/up/ok; do
    curl -s -o /dev/null "http://$address$path"
done
sleep 1.2   # counters publish every 50 ms, histograms every second
curl -s "http://$admin/metrics" >"$run/metrics.txt"
echo "promtool check metrics ($(grep -vc '^#' "$run/metrics.txt") samples):"
promtool check metrics <"$run/metrics.txt"
echo "promtool: no problems"
