#!/usr/bin/env bash
# User-space instructions per proxied request (callgrind, epoll driver, one
# worker) for a JWT route and for a route whose HTTP authorizer answer is
# cached, in one gateway, one run: the same token header on both, wrk
# through each route in turn with the counters zeroed before and dumped
# after. The authorizer is a small Python server that answers every
# question active for an hour, so after the first request per worker
# every request is a cache hit.
#
#   loadtest/authorizer-cost.sh                 # release builds in $CARGO_TARGET_DIR or target/
#   BIN=/path/portcullis DURATION=8s loadtest/authorizer-cost.sh
#   ROUTES=jwt BIN=/path/older/portcullis loadtest/authorizer-cost.sh   # a build without authorizers
#
# Prints one line per route: requests, instructions, instructions per request.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$TARGET/release/portcullis}
LOAD=${LOAD:-$TARGET/release/portcullis-load}
MINT=${MINT:-$TARGET/release/examples/mint_jwt}
DURATION=${DURATION:-8s}
GW_PORT=${GW_PORT:-19100}
UP_PORT=${UP_PORT:-19101}
AUTHZ_PORT=${AUTHZ_PORT:-19102}
ROUTES=${ROUTES:-jwt authz}

work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

"$LOAD" upstream --listen "127.0.0.1:$UP_PORT" >/dev/null 2>&1 &
pids+=($!)
python3 - "$AUTHZ_PORT" >/dev/null 2>&1 <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"active":true,"principal":"bench","scope":"bench","expires_in":3600}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
"$MINT" "$work" >"$work/token"
TOKEN=$(cat "$work/token")

cat >"$work/gateway.toml" <<TOML
admin = ""

[[listeners]]
name = "bench"
address = "127.0.0.1:$GW_PORT"
max_connections_per_ip = 0

[[deployments]]
name = "jwt"
listener = "bench"
path_prefix = "/jwt"
[deployments.authentication]
type = "jwt"
issuers = ["https://issuer.bench"]
audiences = ["bench"]
public_keys = { type = "static_keys", jwks_file = "$work/jwks.json" }
[[deployments.routes]]
path = "/hello"
backend = { type = "http", url = "http://127.0.0.1:$UP_PORT/hello" }

TOML
if [[ " $ROUTES " == *" authz "* ]]; then
    cat >>"$work/gateway.toml" <<TOML

[[deployments]]
name = "authz"
listener = "bench"
path_prefix = "/authz"
[deployments.authentication]
type = "http_authorizer"
authorizer = { url = "http://127.0.0.1:$AUTHZ_PORT/authorize", parameters = ["header:Authorization"] }
[[deployments.routes]]
path = "/hello"
backend = { type = "http", url = "http://127.0.0.1:$UP_PORT/hello" }
TOML
fi

valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
    "$BIN" run --config "$work/gateway.toml" --workers 1 --driver epoll >"$work/gw.log" 2>&1 &
gw=$!
pids+=($gw)
for _ in $(seq 1 300); do
    curl -s -o /dev/null "http://127.0.0.1:$GW_PORT/" && break
    sleep 0.1
done
for route in $ROUTES; do
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$GW_PORT/$route/hello")
    [[ $status == 200 ]] || { echo "authorizer-cost: /$route/hello answered $status" >&2; cat "$work/gw.log" >&2; exit 1; }
done

for route in $ROUTES; do
    callgrind_control -z "$gw" >/dev/null
    requests=$(wrk -t1 -c8 -d"$DURATION" -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$GW_PORT/$route/hello" | awk '/requests in/ {print $1}')
    callgrind_control -d "$route" "$gw" >/dev/null
    dump=$(ls -t "$work"/cg.out* | head -n1)
    instructions=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
    echo "$route requests=$requests instructions=$instructions per_request=$((instructions / requests))"
    [[ -n ${KEEP:-} ]] && cp "$dump" "$KEEP/callgrind.$route"
done
