#!/usr/bin/env bash
# TLS termination: Portcullis next to nginx, both terminating HTTPS and proxying the
# same small GET to the same fast local upstream over plain HTTP, in the same run, in
# interleaved rounds. Two measurements:
#   1. keep-alive throughput: wrk over https, requests per second of proxy CPU time;
#   2. full handshakes: `openssl s_time -new -tls1_3` (no resumption, no request),
#      handshakes per second and per second of proxy CPU time.
# The certificate is ECDSA P-256 (self-signed, made by this script with openssl);
# both proxies offer TLS 1.2 and 1.3 and negotiate TLS 1.3 with X25519.
#
#   loadtest/tls-vs-nginx.sh                         # 5 rounds, 10 s each part, 64 connections
#   ROUNDS=3 DURATION=5s HS_SECONDS=5 loadtest/tls-vs-nginx.sh
#
# Layout (2 cores): the proxy under test on CPU 0; the upstream nginx, wrk and
# openssl on CPU 1. Results: loadtest/out/tls-vs-nginx.md and loadtest/out/tls-rounds.csv.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=loadtest/lib.sh
source "$HERE/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
HS_SECONDS=${HS_SECONDS:-10}
CONNECTIONS=${CONNECTIONS:-64}
PORTCULLIS_BIN=${PORTCULLIS_BIN:-target/release/portcullis}
UPSTREAM_PORT=${UPSTREAM_PORT:-9000}
GATEWAY_PORT=${GATEWAY_PORT:-8443}
NGINX_PORT=${NGINX_PORT:-8444}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
# Before each measured run, wait up to this many seconds for the machine to be quiet.
WAIT_IDLE=${WAIT_IDLE:-60}

[[ $DURATION =~ ^[0-9]+$ ]] && DURATION="${DURATION}s"
[[ $WARMUP =~ ^[0-9]+$ ]] && WARMUP="${WARMUP}s"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $HS_SECONDS =~ ^[1-9][0-9]*$ ]] || die "HS_SECONDS must be whole seconds"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer"
[[ $PORTCULLIS_BIN = /* ]] || PORTCULLIS_BIN="$ROOT/$PORTCULLIS_BIN"
DURATION_S=$(duration_secs "$DURATION")

ensure_tools "nginx:nginx-light|nginx" "wrk:wrk" "taskset:util-linux" "openssl:openssl" "curl:curl"
(($(nproc) >= 2)) || { log "warning: fewer than 2 CPUs; proxy and load share a core"; LOAD_CPU=$PROXY_CPU; }
mkdir -p "$ROOT/loadtest/out"
if binary_stale "$PORTCULLIS_BIN" "$ROOT"; then
    build_release "$ROOT" 1 0 "$ROOT/loadtest/out/build.log" || die "cargo build --release failed"
fi
for p in "$UPSTREAM_PORT" "$GATEWAY_PORT" "$NGINX_PORT"; do
    port_open "$p" && die "127.0.0.1:$p is already in use (set UPSTREAM_PORT / GATEWAY_PORT / NGINX_PORT)"
done

OUT="$ROOT/loadtest/out"
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

# ---------------------------------------------------------------- certificate and configs

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$RUN/key.pem" -out "$RUN/cert.pem" 2>/dev/null || die "openssl could not make a certificate"

write_upstream_nginx_conf "$RUN" "$UPSTREAM_PORT"
{
    nginx_preamble "$RUN" nginx
    cat <<EOF
    upstream up {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl reuseport backlog=4096;
        ssl_certificate $RUN/cert.pem;
        ssl_certificate_key $RUN/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location = /bench/hello {
            proxy_pass http://up/hello;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location / { return 404; }
    }
}
EOF
} >"$RUN/nginx.conf"

bench_gateway_toml "$GATEWAY_PORT" "$UPSTREAM_PORT" >"$RUN/gateway.toml"
# The listener becomes a TLS listener: its table gets a `tls` key.
sed -i "s|^address = \"127.0.0.1:$GATEWAY_PORT\"|&\ntls = { certificates = [{ cert = \"$RUN/cert.pem\", key = \"$RUN/key.pem\" }] }|" \
    "$RUN/gateway.toml"

# ---------------------------------------------------------------- start

start_nginx() { # name cpu -> PID in $STARTED_PID
    local name=$1 cpu=$2
    nginx -t -p "$RUN" -c "$RUN/$name.conf" -e "$RUN/$name-error.log" >"$RUN/$name-t.log" 2>&1 ||
        { cat "$RUN/$name-t.log" >&2; die "nginx config $name rejected"; }
    taskset -c "$cpu" nginx -p "$RUN" -c "$RUN/$name.conf" -e "$RUN/$name-error.log" >"$RUN/$name.stdout" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

{
    machine_info
    echo "openssl:   $(openssl version)"
    echo "gateway:   $("$PORTCULLIS_BIN" --version 2>&1 | head -n1) ($PORTCULLIS_BIN, built $(date -u -r "$PORTCULLIS_BIN" +%Y-%m-%dT%H:%M:%SZ))"
} | tee "$RUN/machine.txt"
echo "proxy under test on CPU $PROXY_CPU; upstream nginx, wrk and openssl on CPU $LOAD_CPU"
echo

start_nginx upstream "$LOAD_CPU"
UPSTREAM_PID=$STARTED_PID
wait_port "$UPSTREAM_PORT" "$UPSTREAM_PID" || die "upstream nginx did not start"
start_nginx nginx "$PROXY_CPU"
NGINX_PID=$STARTED_PID
wait_port "$NGINX_PORT" "$NGINX_PID" || { cat "$RUN/nginx-error.log" >&2; die "nginx did not start"; }
taskset -c "$PROXY_CPU" "$PORTCULLIS_BIN" run --config "$RUN/gateway.toml" --workers 1 --no-watch \
    >"$RUN/gateway.stdout" 2>"$RUN/gateway.stderr" &
GW_PID=$!
PIDS+=("$GW_PID")
wait_port "$GATEWAY_PORT" "$GW_PID" 30 || { tail -n 30 "$RUN/gateway.stderr" >&2; die "gateway did not start"; }

for target in "portcullis:$GATEWAY_PORT" "nginx:$NGINX_PORT"; do
    body=$(curl -s --max-time 5 --cacert "$RUN/cert.pem" "https://localhost:${target#*:}/bench/hello") || true
    [[ $body == hello ]] || die "${target%%:*} did not answer https GET /bench/hello with \"hello\" (got: $body)"
done
log "both proxies answer https://localhost/bench/hello with 200 hello"

# ---------------------------------------------------------------- measure

CLK_TCK=$(getconf CLK_TCK)
CSV="$OUT/tls-rounds.csv"
echo "round,test,proxy,count,per_s,proxy_cpu_s,per_proxy_cpu_s,errors,other_cpu_s,kept" >"$CSV"

settle() {
    if ((WAIT_IDLE > 0)) && ! wait_idle 0; then
        wait_idle "$WAIT_IDLE" || log "machine still busy; measuring anyway"
    fi
}

# Appends one CSV row and prints it. round test label count seconds cpu_ticks errors other_s
record() {
    local per_s cpu_s per_cpu
    per_s=$(awk -v n="$4" -v s="$5" 'BEGIN {printf "%.0f", n / s}')
    cpu_s=$(awk -v t="$6" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", t / hz}')
    per_cpu=$(awk -v n="$4" -v c="$cpu_s" 'BEGIN {if (c > 0) printf "%.0f", n / c; else print 0}')
    echo "$1,$2,$3,$4,$per_s,$cpu_s,$per_cpu,$7,$8,1" >>"$CSV"
    printf '  round %d  %-10s %-10s %9s/s  cpu %5.2f s  %8s per cpu-s  errors %s  other %s cpu-s\n' \
        "$1" "$2" "$3" "$per_s" "$cpu_s" "$per_cpu" "$7" "$8"
}

other_cpu() { # deltas: machine ticks, proxy ticks, upstream ticks, children ticks
    awk -v m="$1" -v p="$2" -v u="$3" -v w="$4" -v hz="$CLK_TCK" \
        'BEGIN {o = (m - p - u - w) / hz; if (o < 0) o = 0; printf "%.2f", o}'
}

throughput() { # round label port pid
    local url="https://127.0.0.1:$3/bench/hello" out m0 m1 u0 u1 w0 w1 t0 t1
    settle
    timeout "$(($(duration_secs "$WARMUP") + 30))" taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "$url" >/dev/null
    m0=$(machine_busy_ticks) u0=$(cpu_ticks "$UPSTREAM_PID") w0=$(children_ticks) t0=$(cpu_ticks "$4")
    out=$(timeout $((DURATION_S + 30)) taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$url")
    t1=$(cpu_ticks "$4") m1=$(machine_busy_ticks) u1=$(cpu_ticks "$UPSTREAM_PID") w1=$(children_ticks)
    printf '%s\n' "$out" >"$RUN/wrk-r$1-$2.txt"
    parse_wrk "$out" || { printf '%s\n' "$out" >&2; die "could not parse wrk output ($2, round $1)"; }
    record "$1" keepalive "$2" "$WRK_REQS" "$WRK_DUR_S" $((t1 - t0)) $((WRK_NON2XX + WRK_SOCKERR)) \
        "$(other_cpu $((m1 - m0)) $((t1 - t0)) $((u1 - u0)) $((w1 - w0)))"
}

handshakes() { # round label port pid
    local out n s0 s1 secs m0 m1 u0 u1 w0 w1 t0 t1
    settle
    m0=$(machine_busy_ticks) u0=$(cpu_ticks "$UPSTREAM_PID") w0=$(children_ticks) t0=$(cpu_ticks "$4")
    s0=$(date +%s.%N)
    out=$(timeout $((HS_SECONDS + 30)) taskset -c "$LOAD_CPU" \
        openssl s_time -connect "127.0.0.1:$3" -new -tls1_3 -time "$HS_SECONDS" 2>&1) || true
    s1=$(date +%s.%N)
    t1=$(cpu_ticks "$4") m1=$(machine_busy_ticks) u1=$(cpu_ticks "$UPSTREAM_PID") w1=$(children_ticks)
    printf '%s\n' "$out" >"$RUN/s_time-r$1-$2.txt"
    n=$(awk '/connections in .*real seconds/ {print $1; exit}' <<<"$out")
    [[ -n $n ]] || { printf '%s\n' "$out" >&2; die "could not parse openssl s_time output ($2, round $1)"; }
    secs=$(awk -v a="$s0" -v b="$s1" 'BEGIN {printf "%.3f", b - a}')
    record "$1" handshake "$2" "$n" "$secs" $((t1 - t0)) 0 \
        "$(other_cpu $((m1 - m0)) $((t1 - t0)) $((u1 - u0)) $((w1 - w0)))"
}

echo "rounds=$ROUNDS; keep-alive: wrk -t1 -c$CONNECTIONS -d$DURATION after a $WARMUP warm-up;" \
    "handshakes: openssl s_time -new -tls1_3 -time $HS_SECONDS"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        order=("portcullis $GATEWAY_PORT $GW_PID" "nginx $NGINX_PORT $NGINX_PID")
    else
        order=("nginx $NGINX_PORT $NGINX_PID" "portcullis $GATEWAY_PORT $GW_PID")
    fi
    for entry in "${order[@]}"; do
        # shellcheck disable=SC2086
        throughput "$r" $entry
    done
    for entry in "${order[@]}"; do
        # shellcheck disable=SC2086
        handshakes "$r" $entry
    done
    kill -0 "$GW_PID" 2>/dev/null || die "the gateway exited during round $r"
done
echo

# ---------------------------------------------------------------- report

med() { # test proxy column -> median over the rounds
    awk -F, -v t="$1" -v p="$2" -v c="$3" 'NR > 1 && $2 == t && $3 == p && $NF == 1 {print $c}' "$CSV" | sort -g |
        awk '{v[NR] = $1} END {if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
declare -A M
for t in keepalive handshake; do
    for p in portcullis nginx; do
        M[$t.$p.rate]=$(med "$t" "$p" 5)
        M[$t.$p.cpu]=$(med "$t" "$p" 6)
        M[$t.$p.percpu]=$(med "$t" "$p" 7)
        M[$t.$p.other]=$(med "$t" "$p" 9)
        M[$t.$p.errors]=$(awk -F, -v t="$t" -v p="$p" 'NR > 1 && $2 == t && $3 == p {s += $8} END {print s + 0}' "$CSV")
    done
done

report() {
    local t unit p
    echo "| test | proxy | per second | per proxy-CPU-second | proxy CPU s per run | errors | other load CPU s |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for t in keepalive handshake; do
        if [[ $t == keepalive ]]; then unit="requests (keep-alive)"; else unit="full TLS 1.3 handshakes"; fi
        for p in portcullis nginx; do
            printf '| %s | %s | %.0f | %.0f | %.2f | %d | %.2f |\n' "$unit" "$p" "${M[$t.$p.rate]}" \
                "${M[$t.$p.percpu]}" "${M[$t.$p.cpu]}" "${M[$t.$p.errors]}" "${M[$t.$p.other]}"
        done
        printf '| %s | **portcullis / nginx** | %s | **%s** | | | |\n' "$unit" \
            "$(ratio "${M[$t.portcullis.rate]}" "${M[$t.nginx.rate]}")" \
            "$(ratio "${M[$t.portcullis.percpu]}" "${M[$t.nginx.percpu]}")"
    done
}

report
{
    echo "# TLS termination: Portcullis vs nginx, 1 proxy worker, loopback"
    echo
    echo '```'
    cat "$RUN/machine.txt"
    echo '```'
    echo
    echo "Medians over $ROUNDS interleaved rounds. Keep-alive: \`wrk -t1 -c$CONNECTIONS -d$DURATION --latency https://...\`"
    echo "after a $WARMUP warm-up. Handshakes: \`openssl s_time -connect ... -new -tls1_3 -time $HS_SECONDS\` (full handshakes,"
    echo "no request). ECDSA P-256 certificate; proxy on CPU $PROXY_CPU; upstream nginx, wrk and openssl on CPU $LOAD_CPU."
    echo
    report
    echo
    echo "Per-round numbers: \`loadtest/out/tls-rounds.csv\`."
} >"$OUT/tls-vs-nginx.md"
log "wrote $OUT/tls-vs-nginx.md and $CSV"
