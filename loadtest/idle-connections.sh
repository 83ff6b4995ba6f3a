#!/usr/bin/env bash
# Memory held by idle keep-alive client connections: the gateway's RSS before and
# after 10,000 clients each sent one request and then went quiet, and the same for
# an nginx worker (keepalive_timeout 75s) as a reference.
#
#   loadtest/idle-connections.sh                        # 10,000 connections, held 10 s
#   CONNECTIONS=20000 HOLD=20 loadtest/idle-connections.sh
#   PROXY_UNDER_TEST=nginx-only loadtest/idle-connections.sh   # no gateway: nginx only
#   COMPARE_NGINX=0 loadtest/idle-connections.sh               # gateway only
#   WORKERS=2 loadtest/idle-connections.sh                     # gateway with 2 workers
#   TLS=1 loadtest/idle-connections.sh                         # TLS listeners (both servers)
#   PORTCULLIS_BIN=/path/to/portcullis loadtest/idle-connections.sh   # a given build
#
# Target: the connections add less than 64 MiB to the gateway's RSS.
# Result: loadtest/out/idle-connections.md. See loadtest/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=loadtest/lib.sh
source "$HERE/lib.sh"

CONNECTIONS=${CONNECTIONS:-10000}
HOLD=${HOLD:-10}
PORTCULLIS_BIN=${PORTCULLIS_BIN:-target/release/portcullis}
PROXY_UNDER_TEST=${PROXY_UNDER_TEST:-both}   # both | nginx-only
COMPARE_NGINX=${COMPARE_NGINX:-1}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
NGINX_PORT=${NGINX_PORT:-8082}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TARGET_MIB=${TARGET_MIB:-64}
GATEWAY_ENV=${GATEWAY_ENV:-}
WORKERS=${WORKERS:-1}
TLS=${TLS:-0}

[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer"
[[ $HOLD =~ ^[0-9]+$ ]] || die "HOLD must be whole seconds"
[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a positive integer"
[[ $TLS == 0 || $TLS == 1 ]] || die "TLS must be 0 or 1"
case $PROXY_UNDER_TEST in both | nginx-only) ;; *) die "PROXY_UNDER_TEST must be both or nginx-only" ;; esac
[[ $PORTCULLIS_BIN = /* ]] || PORTCULLIS_BIN="$ROOT/$PORTCULLIS_BIN"
if (($(nproc) < 2)); then CLIENT_CPU=$SERVER_CPU; fi

command -v python3 >/dev/null || die "python3 is required"
if [[ $COMPARE_NGINX == 1 || $PROXY_UNDER_TEST == nginx-only ]]; then
    ensure_tools "nginx:nginx-light|nginx" "taskset:util-linux"
else
    ensure_tools "taskset:util-linux"
fi
if [[ $PROXY_UNDER_TEST == both && ! -x $PORTCULLIS_BIN ]]; then
    log "$PORTCULLIS_BIN missing: cargo build --release"
    (cd "$ROOT" && cargo build --release)
    [[ -x $PORTCULLIS_BIN ]] || die "no gateway binary at $PORTCULLIS_BIN"
fi

# Both the servers and the client inherit this.
raise_nofile
NOFILE=$(ulimit -Sn)
((NOFILE > CONNECTIONS + 100)) || die "open-files limit $NOFILE is too low for $CONNECTIONS connections (raise the hard limit)"

OUT="$ROOT/loadtest/out"
mkdir -p "$OUT"
RUN=$(mktemp -d "$OUT/run.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    ((${#PIDS[@]})) && stop_pids "${PIDS[@]}"
    if ((rc == 0)) && [[ -z ${KEEP_RUN_DIR:-} ]]; then rm -rf "$RUN"; else log "logs kept in $RUN"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Drop a PID from the cleanup list (after it has been waited for).
forget_pid() {
    local keep=() p
    for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}
# Stop one started process and drop it from the cleanup list.
stop_one() {
    stop_pids "$1"
    forget_pid "$1"
}

{
    machine_info
    if [[ $PROXY_UNDER_TEST == both ]]; then
        echo "gateway:   $("$PORTCULLIS_BIN" --version 2>&1 | head -n1) ($PORTCULLIS_BIN, built $(date -u -r "$PORTCULLIS_BIN" +%Y-%m-%dT%H:%M:%SZ))"
    fi
} | tee "$RUN/machine.txt"
echo "open-files soft limit: $NOFILE; server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
echo

TLS_FLAG=""
if [[ $TLS == 1 ]]; then
    TLS_FLAG=--tls
    command -v curl >/dev/null || die "curl is required for TLS=1"
    "$ROOT/scripts/make-dev-cert.sh" "$RUN/tls" >/dev/null
fi
ROWS=()   # label|before_kib|after_kib|opened|statuses|errors|still_open|fds
# measure LABEL PORT PATH RSS_PID FD_PID
measure() {
    local label=$1 port=$2 path=$3 rss_pid=$4 fd_pid=$5
    local resp before after ready="" done_line="" cpid i fds
    if [[ $TLS == 1 ]]; then
        resp=$(curl -sik --max-time 5 "https://127.0.0.1:$port$path" | tr -d '\r') || true
    else
        resp=$(http_get "$port" "$path" | tr -d '\r') || true
    fi
    [[ ${resp%%$'\n'*} == "HTTP/1.1 200"* ]] || {
        printf '%s\n' "$resp" | head -n 20 >&2
        die "$label did not answer GET $path with 200"
    }
    sleep 1
    before=$(rss_kib "$rss_pid")
    log "$label: RSS before ${before} KiB; opening $CONNECTIONS connections"
    timeout $((HOLD + 180)) taskset -c "$CLIENT_CPU" python3 "$HERE/idle_clients.py" $TLS_FLAG \
        "$port" "$path" "$CONNECTIONS" "$HOLD" >"$RUN/client-$label.out" 2>"$RUN/client-$label.err" &
    cpid=$!
    PIDS+=("$cpid")
    for ((i = 0; i < 1500; i++)); do   # up to 150 s to open them all
        ready=$(grep -m1 '^READY' "$RUN/client-$label.out" || true)
        [[ -n $ready ]] && break
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n $ready ]] || { cat "$RUN/client-$label.err" >&2; die "$label: the client did not get its connections open"; }
    sleep 2   # let the server settle with every connection idle
    after=$(rss_kib "$rss_pid")
    fds=$(find "/proc/$fd_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    log "$label: $ready"
    log "$label: RSS after ${after} KiB, $fds open file descriptors"
    wait "$cpid" || log "warning: $label: client exited with status $? (not every connection opened)"
    forget_pid "$cpid"
    done_line=$(grep -m1 '^DONE' "$RUN/client-$label.out" || true)
    log "$label: ${done_line:-no DONE line}"
    local opened statuses errors still
    opened=$(sed -n 's/.* opened=\([0-9]*\).*/\1/p' <<<"$ready")
    statuses=$(sed -n 's/.* statuses=\([^ ]*\).*/\1/p' <<<"$ready")
    errors=$(sed -n 's/.* errors=\([^ ]*\).*/\1/p' <<<"$ready")
    still=$(sed -n 's/.* still_open=\([0-9]*\).*/\1/p' <<<"$done_line")
    ROWS+=("$label|$before|$after|${opened:-0}|${statuses:--}|${errors:--}|${still:-?}|$fds")
}

if [[ $PROXY_UNDER_TEST == both ]]; then
    cat >"$RUN/gateway.toml" <<EOF
admin = ""   # off: the default port may be held by another gateway
[[listeners]]
name = "public"
address = "127.0.0.1:$GATEWAY_PORT"
max_connections_per_ip = 0   # 10,000 connections come from one address here
$(if [[ $TLS == 1 ]]; then printf '[listeners.tls]\ncertificates = [{ cert = "%s", key = "%s" }]\n' "$RUN/tls/cert.pem" "$RUN/tls/key.pem"; fi)

[[deployments]]
name = "idle"
listener = "public"
path_prefix = "/idle"

[[deployments.routes]]
path = "/ok"
methods = ["GET"]
backend = { type = "stock", status = 200, body = "ok" }
EOF
    port_open "$GATEWAY_PORT" && die "127.0.0.1:$GATEWAY_PORT is already in use (set GATEWAY_PORT)"
    # shellcheck disable=SC2086
    env $GATEWAY_ENV taskset -c "$SERVER_CPU" "$PORTCULLIS_BIN" run --config "$RUN/gateway.toml" --workers "$WORKERS" \
        >"$RUN/gateway.stdout" 2>"$RUN/gateway.stderr" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_port "$GATEWAY_PORT" "$GW_PID" 30 || {
        tail -n 30 "$RUN/gateway.stderr" >&2
        die "gateway did not start listening on 127.0.0.1:$GATEWAY_PORT"
    }
    measure "portcullis-${WORKERS}w" "$GATEWAY_PORT" /idle/ok "$GW_PID" "$GW_PID"
    kill -0 "$GW_PID" 2>/dev/null || die "the gateway exited during the test"
    stop_one "$GW_PID"
fi

if [[ $COMPARE_NGINX == 1 || $PROXY_UNDER_TEST == nginx-only ]]; then
    mkdir -p "$RUN/nginx-tmp"
    cat >"$RUN/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $NOFILE;
pid $RUN/nginx.pid;
error_log $RUN/nginx-error.log warn;
events { worker_connections $((CONNECTIONS + 1024)); }
http {
    access_log off;
    client_body_temp_path $RUN/nginx-tmp/body;
    proxy_temp_path $RUN/nginx-tmp/proxy;
    fastcgi_temp_path $RUN/nginx-tmp/fastcgi;
    uwsgi_temp_path $RUN/nginx-tmp/uwsgi;
    scgi_temp_path $RUN/nginx-tmp/scgi;
    keepalive_timeout 75s;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096$( ((TLS)) && echo " ssl");
$( ((TLS)) && printf '        ssl_certificate %s;\n        ssl_certificate_key %s;\n' "$RUN/tls/cert.pem" "$RUN/tls/key.pem")
        location = /idle/ok { default_type text/plain; return 200 "ok"; }
        location / { return 404; }
    }
}
EOF
    port_open "$NGINX_PORT" && die "127.0.0.1:$NGINX_PORT is already in use (set NGINX_PORT)"
    taskset -c "$SERVER_CPU" nginx -p "$RUN" -c "$RUN/nginx.conf" -e "$RUN/nginx-error.log" \
        >"$RUN/nginx.stdout" 2>&1 &
    NGX_PID=$!
    PIDS+=("$NGX_PID")
    wait_port "$NGINX_PORT" "$NGX_PID" || { cat "$RUN/nginx-error.log" >&2; die "nginx did not start"; }
    NGX_WORKER=$(pgrep -P "$NGX_PID" | head -n1)
    [[ -n $NGX_WORKER ]] || die "no nginx worker process found"
    measure "nginx-worker" "$NGINX_PORT" /idle/ok "$NGX_WORKER" "$NGX_WORKER"
    stop_one "$NGX_PID"
fi

# ---------------------------------------------------------------- report

table() { # text | md
    local fmt=$1 row label before after opened statuses errors still fds added per verdict
    if [[ $fmt == md ]]; then
        echo "| server | RSS before MiB | RSS after MiB | added MiB | per connection KiB | opened | still open after hold | responses | errors | < $TARGET_MIB MiB |"
        echo "|---|---:|---:|---:|---:|---:|---:|---|---|---|"
    else
        printf '%-13s %10s %10s %9s %12s %7s %10s %-10s %s\n' server before-MiB after-MiB added-MiB per-conn-KiB opened still-open responses "< $TARGET_MIB MiB"
    fi
    for row in "${ROWS[@]}"; do
        IFS='|' read -r label before after opened statuses errors still fds <<<"$row"
        added=$(awk -v a="$after" -v b="$before" 'BEGIN {printf "%.1f", (a - b) / 1024}')
        per=$(awk -v a="$after" -v b="$before" -v n="$CONNECTIONS" 'BEGIN {printf "%.2f", (a - b) / n}')
        verdict=$(awk -v a="$after" -v b="$before" -v t="$TARGET_MIB" -v o="$opened" -v n="$CONNECTIONS" \
            'BEGIN {if (o != n) print "n/a (not all opened)"; else if ((a - b) / 1024 < t) print "yes"; else print "NO"}')
        if [[ $fmt == md ]]; then
            printf '| %s | %.1f | %.1f | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
                "$(awk -v v="$before" 'BEGIN {print v / 1024}')" "$(awk -v v="$after" 'BEGIN {print v / 1024}')" \
                "$added" "$per" "$opened" "$still" "$statuses" "$errors" "$verdict"
        else
            printf '%-13s %10.1f %10.1f %9s %12s %7s %10s %-10s %s\n' "$label" \
                "$(awk -v v="$before" 'BEGIN {print v / 1024}')" "$(awk -v v="$after" 'BEGIN {print v / 1024}')" \
                "$added" "$per" "$opened" "$still" "$statuses" "$verdict"
            [[ $errors == - ]] || log "warning: $label: connection errors: $errors"
        fi
    done
}

echo
echo "$CONNECTIONS idle keep-alive connections ($( ((TLS)) && echo TLS || echo plain), $WORKERS gateway worker(s)), one GET each, held ${HOLD}s (RSS = VmRSS):"
table text
{
    echo "# Idle keep-alive connections: memory"
    echo
    echo '```'
    cat "$RUN/machine.txt"
    echo '```'
    echo
    echo "Transport: $( ((TLS)) && echo TLS || echo plain TCP); gateway workers: $WORKERS."
    echo
    echo "$CONNECTIONS connections to 127.0.0.1, each sends one \`GET /idle/ok HTTP/1.1\` (stock 200 \"ok\"),"
    echo "reads the response and then stays open and idle for ${HOLD}s. RSS is VmRSS of the gateway process"
    echo "($WORKERS worker(s), default limits) and of the nginx worker (\`worker_processes 1\`, \`keepalive_timeout 75s\`),"
    echo "read 1 s before the first connection and 2 s after the last one was open. Open-files limit: $NOFILE."
    echo
    table md
    echo
    echo "Target: the connections add less than $TARGET_MIB MiB to the gateway's RSS."
} >"$OUT/idle-connections.md"
log "wrote $OUT/idle-connections.md"
