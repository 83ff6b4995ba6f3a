#!/usr/bin/env bash
# User-space instructions per request, counted with callgrind: the gateway on its
# epoll driver (callgrind cannot follow io_uring's shared rings), one worker,
# instrumentation switched on after a warm-up, `wrk -t1 -c$CONNS -d$DURATION` through
# one route, total instructions ÷ requests wrk completed. Also prints the top
# functions (inclusive and self) of the profile.
#
#   scripts/count-instructions.sh                      # proxy route to a local nginx upstream
#   ROUTE=stock scripts/count-instructions.sh          # stock answer, no upstream
#   PORTCULLIS_BIN=/path/to/portcullis scripts/count-instructions.sh   # a given build
#   SYSCALLS=1 scripts/count-instructions.sh           # system calls per request instead (strace -c, io_uring driver)
#   SYSCALLS=1 DRIVER=epoll scripts/count-instructions.sh   # the same on the epoll driver
#
# Needs valgrind (callgrind_control), wrk and, for the proxy route, nginx;
# scripts/install-test-deps.sh does not install them: apt-get install valgrind wrk nginx-light strace.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${PORTCULLIS_BIN:-target/release/portcullis}")
ROUTE=${ROUTE:-proxy}
DURATION=${DURATION:-8}
CONNS=${CONNS:-8}
PORT=${PORT:-18580}
UPSTREAM_PORT=${UPSTREAM_PORT:-18581}
SYSCALLS=${SYSCALLS:-0}
DRIVER=${DRIVER:-io-uring}
case $ROUTE in proxy | stock) ;; *) echo "ROUTE must be proxy or stock" >&2; exit 2 ;; esac
for tool in wrk valgrind callgrind_control; do
    command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done
[[ -x $BIN ]] || { echo "no gateway binary at $BIN (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d)
[[ -z ${KEEP:-} ]] || echo "work dir: $work" >&2
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -n ${KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
    local i
    for ((i = 0; i < 1200; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    exit 1
}

if [[ $ROUTE == proxy ]]; then
    command -v nginx >/dev/null || { echo "nginx is required for ROUTE=proxy" >&2; exit 1; }
    mkdir -p "$work/nginx"
    cat >"$work/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        location / { default_type text/plain; return 200 "hello\n"; }
    }
}
NGINX
    nginx -p "$work" -c "$work/nginx.conf" -e "$work/nginx-error.log" &
    pids+=($!)
    wait_port "$UPSTREAM_PORT"
    backend="backend = { type = \"http\", url = \"http://127.0.0.1:$UPSTREAM_PORT/hello\" }"
else
    backend='backend = { type = "stock", status = 200, body = "hello\n" }'
fi
cat >"$work/gw.toml" <<TOML
admin = "127.0.0.1:0"
[[listeners]]
name = "public"
address = "127.0.0.1:$PORT"
[[deployments]]
name = "count"
listener = "public"
[[deployments.routes]]
path = "/hello"
$backend
TOML

if [[ $SYSCALLS == 1 ]]; then
    command -v strace >/dev/null || { echo "strace is required for SYSCALLS=1" >&2; exit 1; }
    "$BIN" run --config "$work/gw.toml" --workers 1 --driver "$DRIVER" 2>"$work/gw.log" &
    gw=$!
    pids+=("$gw")
    wait_port "$PORT"
    wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$PORT/hello" >/dev/null
    strace -c -f -p "$gw" -o "$work/strace" &
    tracer=$!
    sleep 0.5
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PORT/hello")
    kill -INT "$tracer"
    wait "$tracer" 2>/dev/null || true
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    echo "route=$ROUTE requests=$requests ($DRIVER driver, 1 worker, traced: slower than untraced)"
    awk -v n="$requests" 'NR > 2 && $NF != "total" && $4 ~ /^[0-9]+$/ {printf "%-20s %10d calls %8.3f per request\n", $NF, $4, $4 / n}
        $NF == "total" {printf "%-20s %10d calls %8.3f per request\n", "total", $4, $4 / n}' "$work/strace"
    exit 0
fi

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$work/callgrind.out" \
    "$BIN" run --config "$work/gw.toml" --workers 1 --driver epoll 2>"$work/gw.log" &
gw=$!
pids+=("$gw")
wait_port "$PORT"
wrk -t1 -c"$CONNS" -d2s "http://127.0.0.1:$PORT/hello" >/dev/null
callgrind_control -i on "$gw" >/dev/null
out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:$PORT/hello")
callgrind_control -i off "$gw" >/dev/null
kill -TERM "$gw"
wait "$gw" 2>/dev/null || true
requests=$(awk '/requests in/ {print $1}' <<<"$out")
non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
[[ -z $non2xx ]] || { echo "the route answered $non2xx non-2xx responses" >&2; exit 1; }
total=$(callgrind_annotate "$work/callgrind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "route=$ROUTE requests=$requests instructions=$total per_request=$((total / requests)) ($(basename "$BIN"), epoll driver, 1 worker, wrk -t1 -c$CONNS -d${DURATION}s)"
echo "top functions, inclusive (instructions per request):"
callgrind_annotate --inclusive=yes "$work/callgrind.out" 2>/dev/null |
    awk -v n="$requests" '/^ *[0-9,]+ .*:/ {c = $1; gsub(",", "", c); $1 = ""; if (++k <= 25) printf "%8d %s\n", c / n, substr($0, 1, 140)}'
echo "top functions, self:"
callgrind_annotate "$work/callgrind.out" 2>/dev/null |
    awk -v n="$requests" '/^ *[0-9,]+ .*:/ {c = $1; gsub(",", "", c); $1 = ""; if (++k <= 25) printf "%8d %s\n", c / n, substr($0, 1, 140)}'
