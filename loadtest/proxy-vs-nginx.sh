#!/usr/bin/env bash
# Throughput and latency of Portcullis next to nginx, proxying the same small GET
# to the same fast local upstream, in the same run, in interleaved rounds.
#
#   loadtest/proxy-vs-nginx.sh                      # defaults: 5 rounds x 10 s, 64 connections
#   ROUNDS=3 DURATION=5s loadtest/proxy-vs-nginx.sh
#   PROXY_UNDER_TEST=nginx-only loadtest/proxy-vs-nginx.sh   # no gateway: nginx vs nginx (A/A)
#
# Layout (2 cores): the proxy under test (gateway or nginx) runs on CPU 0; the upstream
# nginx and wrk share CPU 1. Results: loadtest/out/proxy-vs-nginx.md, loadtest/out/rounds.csv.
# See loadtest/README.md for what the figures mean.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=loadtest/lib.sh
source "$HERE/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
PORTCULLIS_BIN=${PORTCULLIS_BIN:-target/release/portcullis}
PROXY_UNDER_TEST=${PROXY_UNDER_TEST:-both}   # both | nginx-only
UPSTREAM_PORT=${UPSTREAM_PORT:-9000}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
NGINX_PORT=${NGINX_PORT:-8081}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
# Extra TOML appended to the gateway's config (e.g. a setting that turns its
# access log off, if the gateway has one).
GATEWAY_EXTRA_TOML=${GATEWAY_EXTRA_TOML:-}
# Before each measured run, wait up to this many seconds for the machine to be quiet
# (other processes using under 5% of a CPU); 0 turns the wait off.
WAIT_IDLE=${WAIT_IDLE:-60}
# A run during which other processes used over 10% of a CPU is discarded and measured
# again, at most this many times (then kept, with a warning).
RETRY_BUSY=${RETRY_BUSY:-2}
# Extra environment for the gateway process, e.g. PORTCULLIS_LOG=warn (its log filter).
GATEWAY_ENV=${GATEWAY_ENV:-}

[[ $DURATION =~ ^[0-9]+$ ]] && DURATION="${DURATION}s"
[[ $WARMUP =~ ^[0-9]+$ ]] && WARMUP="${WARMUP}s"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer"
[[ $WAIT_IDLE =~ ^[0-9]+$ ]] || die "WAIT_IDLE must be whole seconds"
[[ $RETRY_BUSY =~ ^[0-9]+$ ]] || die "RETRY_BUSY must be a whole number"
case $PROXY_UNDER_TEST in both | nginx-only) ;; *) die "PROXY_UNDER_TEST must be both or nginx-only" ;; esac
[[ $PORTCULLIS_BIN = /* ]] || PORTCULLIS_BIN="$ROOT/$PORTCULLIS_BIN"

# wrk duration -> whole seconds, for the hard time limit around each wrk run.
secs() {
    local d=$1
    case $d in
        *ms) echo 1 ;;
        *s) echo "${d%s}" ;;
        *m) echo $((${d%m} * 60)) ;;
        *h) echo $((${d%h} * 3600)) ;;
        *) echo "$d" ;;
    esac
}
DURATION_S=$(secs "$DURATION")

ensure_tools "nginx:nginx-light|nginx" "wrk:wrk" "taskset:util-linux"
command -v awk >/dev/null || die "awk is required"
(($(nproc) >= 2)) || log "warning: fewer than 2 CPUs; pinning proxy and load to the same core"
if (($(nproc) < 2)); then LOAD_CPU=$PROXY_CPU; fi

if [[ $PROXY_UNDER_TEST == both && ! -x $PORTCULLIS_BIN ]]; then
    log "$PORTCULLIS_BIN missing: cargo build --release"
    (cd "$ROOT" && cargo build --release)
    [[ -x $PORTCULLIS_BIN ]] || die "no gateway binary at $PORTCULLIS_BIN"
fi

for p in "$UPSTREAM_PORT" "$GATEWAY_PORT" "$NGINX_PORT"; do
    port_open "$p" && die "127.0.0.1:$p is already in use (set UPSTREAM_PORT / GATEWAY_PORT / NGINX_PORT)"
done

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

# ---------------------------------------------------------------- configs

# nginx as a reverse proxy with upstream keep-alive; same path as the gateway route.
write_nginx_proxy_conf() {
    local name=$1 port=$2
    {
        nginx_preamble "$RUN" "$name"
        cat <<EOF
    upstream up {
        server 127.0.0.1:$UPSTREAM_PORT;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port reuseport backlog=4096;
        location = /bench/hello {
            proxy_pass http://up/hello;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
        location / { return 404; }
    }
}
EOF
    } >"$RUN/$name.conf"
}

write_gateway_conf() {
    bench_gateway_toml "$GATEWAY_PORT" "$UPSTREAM_PORT" >"$RUN/gateway.toml"
    if [[ -n $GATEWAY_EXTRA_TOML ]]; then
        printf '\n%s\n' "$GATEWAY_EXTRA_TOML" >>"$RUN/gateway.toml"
    fi
}

# ---------------------------------------------------------------- start

start_nginx() { # name cpu -> PID of the master in $STARTED_PID
    local name=$1 cpu=$2
    taskset -c "$cpu" nginx -p "$RUN" -c "$RUN/$name.conf" -e "$RUN/$name-error.log" \
        >"$RUN/$name.stdout" 2>&1 &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}

{
    machine_info
    if [[ $PROXY_UNDER_TEST == both ]]; then
        echo "gateway:   $("$PORTCULLIS_BIN" --version 2>&1 | head -n1) ($PORTCULLIS_BIN, built $(date -u -r "$PORTCULLIS_BIN" +%Y-%m-%dT%H:%M:%SZ))"
    fi
} | tee "$RUN/machine.txt"
echo "proxy under test on CPU $PROXY_CPU; upstream nginx and wrk on CPU $LOAD_CPU"
echo

write_upstream_nginx_conf "$RUN" "$UPSTREAM_PORT"
nginx -t -p "$RUN" -c "$RUN/upstream.conf" -e "$RUN/upstream-error.log" >"$RUN/nginx-t.log" 2>&1 ||
    { cat "$RUN/nginx-t.log" >&2; die "upstream nginx config rejected"; }
start_nginx upstream "$LOAD_CPU"
UPSTREAM_PID=$STARTED_PID
wait_port "$UPSTREAM_PORT" "$UPSTREAM_PID" || { cat "$RUN/upstream-error.log" >&2; die "upstream nginx did not start"; }

write_nginx_proxy_conf nginx "$NGINX_PORT"
start_nginx nginx "$PROXY_CPU"
NGINX_PID=$STARTED_PID
wait_port "$NGINX_PORT" "$NGINX_PID" || { cat "$RUN/nginx-error.log" >&2; die "nginx proxy did not start"; }

if [[ $PROXY_UNDER_TEST == both ]]; then
    GW_LABEL=portcullis
    write_gateway_conf
    # shellcheck disable=SC2086
    env $GATEWAY_ENV taskset -c "$PROXY_CPU" "$PORTCULLIS_BIN" run --config "$RUN/gateway.toml" --workers 1 \
        >"$RUN/gateway.stdout" 2>"$RUN/gateway.stderr" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    wait_port "$GATEWAY_PORT" "$GW_PID" 30 || {
        tail -n 30 "$RUN/gateway.stderr" >&2
        die "gateway did not start listening on 127.0.0.1:$GATEWAY_PORT"
    }
else
    # Dry run without the gateway: a second, identical nginx proxy takes its slot.
    GW_LABEL=nginx-standin
    write_nginx_proxy_conf standin "$GATEWAY_PORT"
    start_nginx standin "$PROXY_CPU"
    GW_PID=$STARTED_PID
    wait_port "$GATEWAY_PORT" "$GW_PID" || { cat "$RUN/standin-error.log" >&2; die "stand-in nginx did not start"; }
fi

# Each proxy must answer the benchmark request with 200 and the upstream's body.
check_route() {
    local label=$1 port=$2 resp
    resp=$(http_get "$port" /bench/hello | tr -d '\r') || true
    if [[ ${resp%%$'\n'*} != "HTTP/1.1 200"* || $resp != *$'\n\n'hello* ]]; then
        printf '%s\n' "$resp" | head -n 20 >&2
        die "$label did not answer GET /bench/hello with 200 \"hello\""
    fi
}
check_route "$GW_LABEL" "$GATEWAY_PORT"
check_route nginx "$NGINX_PORT"
log "both proxies answer GET /bench/hello with 200 hello"

# ---------------------------------------------------------------- measure

CLK_TCK=$(getconf CLK_TCK)
CSV="$OUT/rounds.csv"
echo "round,position,proxy,duration_s,requests,req_per_s,p50_ms,p99_ms,proxy_cpu_s,req_per_proxy_cpu_s,non_2xx_3xx,socket_errors,other_cpu_s,kept" >"$CSV"

WARNINGS=()
# One measured run. Sets DISCARDED=1 (and keeps the row out of the medians) when other
# load spoiled it and $6 says another attempt is allowed.
measure_once() { # round position label port pid may_retry
    local round=$1 pos=$2 label=$3 port=$4 pid=$5 may_retry=$6
    local url="http://127.0.0.1:$port/bench/hello" out t0 t1
    local limit=$((DURATION_S + 30))
    if ((WAIT_IDLE > 0)) && ! wait_idle 0; then
        log "machine busy before round $round $label; waiting up to ${WAIT_IDLE}s for it to settle"
        wait_idle "$WAIT_IDLE" || log "still busy; measuring anyway"
    fi
    timeout "$(($(secs "$WARMUP") + 30))" taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "$url" >/dev/null
    local m0 m1 u0 u1 w0 w1
    m0=$(machine_busy_ticks) u0=$(cpu_ticks "$UPSTREAM_PID") w0=$(children_ticks)
    t0=$(cpu_ticks "$pid")
    out=$(timeout "$limit" taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "$url")
    t1=$(cpu_ticks "$pid")
    m1=$(machine_busy_ticks) u1=$(cpu_ticks "$UPSTREAM_PID") w1=$(children_ticks)
    # CPU used by anything but the proxy, the upstream and wrk: other load on the machine.
    local other_s
    other_s=$(awk -v m=$((m1 - m0)) -v p=$((t1 - t0)) -v u=$((u1 - u0)) -v w=$((w1 - w0)) -v hz="$CLK_TCK" \
        'BEGIN {o = (m - p - u - w) / hz; if (o < 0) o = 0; printf "%.2f", o}')
    printf '%s\n' "$out" >"$RUN/wrk-r$round-$label.txt"

    local reqs dur rps p50 p99 non2xx sockerr cpu_s per_cpu
    parse_wrk "$out" || { printf '%s\n' "$out" >&2; die "could not parse wrk output ($label, round $round)"; }
    reqs=$WRK_REQS dur=$WRK_DUR_S rps=$WRK_RPS p50=$WRK_P50_MS p99=$WRK_P99_MS
    non2xx=$WRK_NON2XX sockerr=$WRK_SOCKERR
    cpu_s=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz}')
    per_cpu=$(awk -v r="$reqs" -v c="$cpu_s" 'BEGIN {if (c > 0) printf "%.0f", r / c; else print "inf"}')
    if ((non2xx > 0 || sockerr > 0)); then
        WARNINGS+=("round $round $label: $non2xx non-2xx/3xx responses, $sockerr socket errors")
    fi
    local kept=1 note=""
    if awk -v o="$other_s" -v d="$DURATION_S" 'BEGIN {exit !(o > 0.1 * d)}'; then
        if ((may_retry)); then
            kept=0 DISCARDED=1 note="  [discarded: machine busy]"
        else
            WARNINGS+=("round $round $label: other processes used ${other_s} CPU-s during the run (machine not idle)")
        fi
    fi
    if ((non2xx + sockerr > 0)); then note+="  [non-2xx $non2xx, socket errors $sockerr]"; fi
    echo "$round,$pos,$label,$dur,$reqs,$rps,$p50,$p99,$cpu_s,$per_cpu,$non2xx,$sockerr,$other_s,$kept" >>"$CSV"
    printf '  round %d  %-13s %8.0f req/s  p50 %7.3f ms  p99 %8.3f ms  cpu %5.2f s  %7s req/cpu-s  other %5.2f cpu-s%s\n' \
        "$round" "$label" "$rps" "$p50" "$p99" "$cpu_s" "$per_cpu" "$other_s" "$note"
}

# A measured run, repeated up to RETRY_BUSY times while other load spoils it.
run_one() { # round position label port pid
    local attempt
    for ((attempt = 0; ; attempt++)); do
        DISCARDED=0
        measure_once "$@" $((attempt < RETRY_BUSY))
        ((DISCARDED)) || return 0
    done
}

echo "rounds=$ROUNDS duration=$DURATION warmup=$WARMUP connections=$CONNECTIONS (wrk -t1 --latency), CLK_TCK=$CLK_TCK"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        run_one "$r" 1 "$GW_LABEL" "$GATEWAY_PORT" "$GW_PID"
        run_one "$r" 2 nginx "$NGINX_PORT" "$NGINX_PID"
    else
        run_one "$r" 1 nginx "$NGINX_PORT" "$NGINX_PID"
        run_one "$r" 2 "$GW_LABEL" "$GATEWAY_PORT" "$GW_PID"
    fi
    kill -0 "$GW_PID" 2>/dev/null || die "$GW_LABEL exited during round $r"
done
echo

# ---------------------------------------------------------------- report

median() { csv_median "$CSV" 3 "$1" "$2"; } # label column -> median over the kept rows
col_sum() { csv_sum "$CSV" 3 "$1" "$2"; }

declare -A M
for label in "$GW_LABEL" nginx; do
    M[$label.rps]=$(median "$label" 6)
    M[$label.percpu]=$(median "$label" 10)
    M[$label.p50]=$(median "$label" 7)
    M[$label.p99]=$(median "$label" 8)
    M[$label.cpu]=$(median "$label" 9)
    M[$label.bad]=$(($(col_sum "$label" 11) + $(col_sum "$label" 12)))
    M[$label.other]=$(median "$label" 13)
done
R_PERCPU=$(ratio "${M[$GW_LABEL.percpu]}" "${M[nginx.percpu]}")
R_P99=$(ratio "${M[$GW_LABEL.p99]}" "${M[nginx.p99]}")
R_RPS=$(ratio "${M[$GW_LABEL.rps]}" "${M[nginx.rps]}")

table() { # fmt: text | md
    local fmt=$1 label
    if [[ $fmt == md ]]; then
        echo "| proxy | req/s | req per proxy-CPU-s | proxy CPU s per run | p50 ms | p99 ms | non-2xx + socket errors | other load CPU s per run |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        for label in "$GW_LABEL" nginx; do
            printf '| %s | %.0f | %.0f | %.2f | %.3f | %.3f | %d | %.2f |\n' "$label" "${M[$label.rps]}" \
                "${M[$label.percpu]}" "${M[$label.cpu]}" "${M[$label.p50]}" "${M[$label.p99]}" "${M[$label.bad]}" \
                "${M[$label.other]}"
        done
        printf '| **%s / nginx** | %s | **%s** | | | **%s** | | |\n' "$GW_LABEL" "$R_RPS" "$R_PERCPU" "$R_P99"
    else
        printf '%-15s %10s %16s %10s %9s %9s %8s %12s\n' proxy req/s req/proxy-cpu-s cpu-s/run p50-ms p99-ms errors other-cpu-s
        for label in "$GW_LABEL" nginx; do
            printf '%-15s %10.0f %16.0f %10.2f %9.3f %9.3f %8d %12.2f\n' "$label" "${M[$label.rps]}" \
                "${M[$label.percpu]}" "${M[$label.cpu]}" "${M[$label.p50]}" "${M[$label.p99]}" "${M[$label.bad]}" \
                "${M[$label.other]}"
        done
        printf '%-15s %10s %16s %10s %9s %9s\n' "ratio gw/nginx" "$R_RPS" "$R_PERCPU" "" "" "$R_P99"
    fi
}

echo "medians over $ROUNDS rounds (each $DURATION, $CONNECTIONS connections):"
table text
for w in "${WARNINGS[@]}"; do log "warning: $w"; done

{
    echo "# Proxy vs nginx: small GET through a route, 1 proxy worker, loopback"
    echo
    echo '```'
    cat "$RUN/machine.txt"
    echo '```'
    echo
    echo "Medians over $ROUNDS interleaved rounds, each \`wrk -t1 -c$CONNECTIONS -d$DURATION --latency\` after a $WARMUP warm-up."
    echo "Proxy under test pinned to CPU $PROXY_CPU; upstream nginx (\`return 200 \"hello\\n\"\`) and wrk pinned to CPU $LOAD_CPU."
    echo "nginx proxy: \`worker_processes 1\`, upstream \`keepalive 64\`, \`proxy_http_version 1.1\`, \`Connection \"\"\`."
    echo "Access logging: nginx \`access_log off\`; the gateway ran with its default log filter${GATEWAY_ENV:+ and \`$GATEWAY_ENV\`}, which logs no line per request."
    echo
    table md
    echo
    echo "Ratios are $GW_LABEL / nginx: above 1 is better for req per proxy-CPU-second, below 1 is better for p99."
    echo "\"Other load\" is CPU time used on the whole machine during a run by anything but the proxy under test,"
    echo "the upstream and wrk (from /proc/stat); well above 0 means something else was running and the run is suspect."
    echo "Such runs were discarded and measured again (up to $RETRY_BUSY times; \`kept=0\` rows in the CSV)."
    echo "Per-round numbers: \`loadtest/out/rounds.csv\`."
    if ((${#WARNINGS[@]})); then
        echo
        for w in "${WARNINGS[@]}"; do echo "- warning: $w"; done
    fi
} >"$OUT/proxy-vs-nginx.md"
log "wrote $OUT/proxy-vs-nginx.md and $CSV"
