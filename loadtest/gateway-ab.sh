#!/usr/bin/env bash
# A/B test of two gateway configurations in the same run, in interleaved rounds: the
# cost of a feature (by default the access log) in throughput, latency and gateway CPU.
#
#   loadtest/gateway-ab.sh                          # 5 rounds x 10 s: plain vs access log
#   ROUNDS=1 DURATION=3s loadtest/gateway-ab.sh     # quick check
#   B_EXTRA_TOML= B_LABEL=plain-again loadtest/gateway-ab.sh     # A/A: noise alone
#   B_LABEL="log to stdout" B_EXTRA_TOML=$'[access_log]\npath = "stdout"' loadtest/gateway-ab.sh
#   REQUEST_HEADER="Authorization: Bearer $TOKEN" ...   # one extra request header on every request
#
# A is the benchmark gateway (one listener, GET /bench/hello -> upstream nginx,
# --workers 1) plus A_EXTRA_TOML; B is the same plus B_EXTRA_TOML. Each run starts a fresh
# gateway on the same port. Layout (2 cores): gateway on CPU 0; upstream nginx and wrk on
# CPU 1. Results: loadtest/out/gateway-ab.md, loadtest/out/gateway-ab-rounds.csv.
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
PORTCULLIS_BIN=${PORTCULLIS_BIN:-}
# Rebuild target/release/portcullis when it is missing or older than the sources
# (only when PORTCULLIS_BIN is not given): 1 or 0.
BUILD=${BUILD:-1}
BUILD_TRIES=${BUILD_TRIES:-5}
BUILD_RETRY_WAIT=${BUILD_RETRY_WAIT:-60}
# Fixed ports, distinct from the shipped config's (8080 / 9901).
UPSTREAM_PORT=${UPSTREAM_PORT:-9100}
GATEWAY_PORT=${GATEWAY_PORT:-8180}
ADMIN_PORT=${ADMIN_PORT:-9911}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WAIT_IDLE=${WAIT_IDLE:-60}
RETRY_BUSY=${RETRY_BUSY:-2}
GATEWAY_ENV=${GATEWAY_ENV:-}
A_LABEL=${A_LABEL:-plain}
B_LABEL=${B_LABEL:-access log}
# TOML appended to each side's config, after the routes: it must start with a [table]
# (top-level keys cannot follow tables). A literal $RUN or ${RUN} stands for the run
# directory. An empty B_EXTRA_TOML (set, but empty) makes an A/A test.
A_EXTRA_TOML=${A_EXTRA_TOML-}
# shellcheck disable=SC2016
B_EXTRA_TOML=${B_EXTRA_TOML-$'[access_log]\npath = "$RUN/access.log"'}
# After each run, how long to wait for the access log counters to stop moving.
SETTLE_S=${SETTLE_S:-5}
# One extra header line sent with every request (route check, warm-up, run), e.g. a token.
REQUEST_HEADER=${REQUEST_HEADER:-}
WRK_HEADER_ARGS=()
[[ -n $REQUEST_HEADER ]] && WRK_HEADER_ARGS=(-H "$REQUEST_HEADER")
# Output names: loadtest/out/$OUT_NAME.md and loadtest/out/$OUT_NAME-rounds.csv.
OUT_NAME=${OUT_NAME:-gateway-ab}
# The request target both sides are measured with (e.g. with a client token in the query).
BENCH_PATH=${BENCH_PATH:-/bench/hello}
# How B's extra config is shown in the output when it is too long to print (default: in full).
B_SUMMARY=${B_SUMMARY:-}
# A file appended to B's config after B_EXTRA_TOML (for configs too large for the environment).
B_EXTRA_FILE=${B_EXTRA_FILE:-}

[[ $DURATION =~ ^[0-9]+$ ]] && DURATION="${DURATION}s"
[[ $WARMUP =~ ^[0-9]+$ ]] && WARMUP="${WARMUP}s"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive integer"
[[ $WAIT_IDLE =~ ^[0-9]+$ ]] || die "WAIT_IDLE must be whole seconds"
[[ $RETRY_BUSY =~ ^[0-9]+$ ]] || die "RETRY_BUSY must be a whole number"
[[ $SETTLE_S =~ ^[0-9]+$ ]] || die "SETTLE_S must be whole seconds"
[[ $OUT_NAME =~ ^[A-Za-z0-9._-]+$ ]] || die "OUT_NAME must be a plain file name"
[[ $A_LABEL != "$B_LABEL" ]] || die "A_LABEL and B_LABEL must differ"
DURATION_S=$(duration_secs "$DURATION")

ensure_tools "nginx:nginx-light|nginx" "wrk:wrk" "taskset:util-linux"
(($(nproc) >= 2)) || log "warning: fewer than 2 CPUs; pinning gateway and load to the same core"
if (($(nproc) < 2)); then LOAD_CPU=$PROXY_CPU; fi

OUT="$ROOT/loadtest/out"
mkdir -p "$OUT"

# ---------------------------------------------------------------- the binary

if [[ -z $PORTCULLIS_BIN ]]; then
    PORTCULLIS_BIN="$ROOT/target/release/portcullis"
    if ((BUILD)) && binary_stale "$PORTCULLIS_BIN" "$ROOT"; then
        log "$PORTCULLIS_BIN is missing or older than the sources"
        BUILD_LOG=$(mktemp "$OUT/build.XXXXXX.log")
        build_release "$ROOT" "$BUILD_TRIES" "$BUILD_RETRY_WAIT" "$BUILD_LOG" ||
            die "cargo build --release failed $BUILD_TRIES times (log: $BUILD_LOG)"
        rm -f "$BUILD_LOG"
        binary_stale "$PORTCULLIS_BIN" "$ROOT" && log "warning: sources changed again during the build; measuring the build just made"
    fi
fi
[[ $PORTCULLIS_BIN = /* ]] || PORTCULLIS_BIN="$PWD/$PORTCULLIS_BIN"
[[ -x $PORTCULLIS_BIN ]] || die "no gateway binary at $PORTCULLIS_BIN"

for p in "$UPSTREAM_PORT" "$GATEWAY_PORT" "$ADMIN_PORT"; do
    port_open "$p" && die "127.0.0.1:$p is already in use (set UPSTREAM_PORT / GATEWAY_PORT / ADMIN_PORT)"
done

RUN=$(mktemp -d "$OUT/run.XXXXXX")
UPSTREAM_PID="" GW_PID=""
cleanup() {
    local rc=$? pids=()
    trap - EXIT INT TERM
    [[ -n $GW_PID ]] && pids+=("$GW_PID")
    [[ -n $UPSTREAM_PID ]] && pids+=("$UPSTREAM_PID")
    ((${#pids[@]})) && stop_pids "${pids[@]}"
    if ((rc == 0)) && [[ -z ${KEEP_RUN_DIR:-} ]]; then rm -rf "$RUN"; else log "logs kept in $RUN"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Every round starts the gateway afresh, and someone may rebuild target/ meanwhile:
# measure a private copy, so that all rounds run the same build.
BIN="$RUN/portcullis"
cp "$PORTCULLIS_BIN" "$BIN"

# ---------------------------------------------------------------- configs

declare -A LABEL=([A]=$A_LABEL [B]=$B_LABEL) EXTRA LOGFILE
EXTRA[A]=$A_EXTRA_TOML
EXTRA[B]=$B_EXTRA_TOML
for side in A B; do
    EXTRA[$side]=${EXTRA[$side]//'${RUN}'/$RUN}
    EXTRA[$side]=${EXTRA[$side]//'$RUN'/$RUN}
done

# The benchmark gateway config, with the admin endpoint on ADMIN_PORT, then the side's extra TOML.
write_gateway_conf() { # side
    local side=$1 f="$RUN/gateway-$1.toml"
    bench_gateway_toml "$GATEWAY_PORT" "$UPSTREAM_PORT" "$ADMIN_PORT" >"$f"
    if [[ -n ${EXTRA[$side]} ]]; then printf '\n%s\n' "${EXTRA[$side]}" >>"$f"; fi
    if [[ $side == B && -n $B_EXTRA_FILE ]]; then cat "$B_EXTRA_FILE" >>"$f"; fi
    "$BIN" check --config "$f" >"$RUN/check-$side.txt" 2>&1 ||
        { cat "$RUN/check-$side.txt" >&2; die "config $side ($f) rejected by portcullis check"; }
    # The access log file, if this side writes one: [access_log] path, relative to our cwd.
    local path
    path=$(awk '/^[ \t]*\[/ {s = ($0 ~ /^[ \t]*\[access_log\][ \t]*$/); next}
        s && /^[ \t]*path[ \t]*=/ {sub(/^[^=]*=[ \t]*"/, ""); sub(/"[ \t]*(#.*)?$/, ""); print; exit}' "$f")
    if [[ -n $path && $path != stdout ]]; then
        [[ $path = /* ]] || path="$PWD/$path"
        LOGFILE[$side]=$path
        [[ $path == "$RUN"/* ]] ||
            log "warning: access log $path ($side) is outside the run directory: it is counted but never deleted"
    elif [[ $path == stdout ]]; then
        LOGFILE[$side]=stdout
    fi
}

# ---------------------------------------------------------------- start / stop

start_gateway() { # side
    local side=$1 p
    for p in "$GATEWAY_PORT" "$ADMIN_PORT"; do
        # The gateway binds with SO_REUSEPORT: a leftover listener would share the port silently.
        port_open "$p" && die "127.0.0.1:$p is in use before starting gateway $side"
    done
    # shellcheck disable=SC2086
    env $GATEWAY_ENV taskset -c "$PROXY_CPU" "$BIN" run --config "$RUN/gateway-$side.toml" --workers 1 \
        >"$RUN/gateway-$side.stdout" 2>>"$RUN/gateway-$side.stderr" &
    GW_PID=$!
    wait_port "$GATEWAY_PORT" "$GW_PID" 30 && wait_port "$ADMIN_PORT" "$GW_PID" 10 || {
        tail -n 30 "$RUN/gateway-$side.stderr" >&2
        die "gateway $side did not start listening on 127.0.0.1:$GATEWAY_PORT and :$ADMIN_PORT"
    }
}

stop_gateway() {
    [[ -n $GW_PID ]] || return 0
    stop_pids "$GW_PID"
    GW_PID=""
}

# The gateway must answer the benchmark request with 200 and the upstream's body.
check_route() { # side
    local resp
    resp=$(http_get "$GATEWAY_PORT" "$BENCH_PATH" "$REQUEST_HEADER" | tr -d '\r') || true
    if [[ ${resp%%$'\n'*} != "HTTP/1.1 200"* || $resp != *$'\n\n'hello* ]]; then
        printf '%s\n' "$resp" | head -n 20 >&2
        die "gateway $1 did not answer GET /bench/hello with 200 \"hello\""
    fi
}

# portcullis_access_log_lines_total{result="written"|"dropped"} -> LOG_WRITTEN, LOG_DROPPED
# (empty when the gateway has no access log). Keeps the metrics text in $1.
read_log_counters() {
    local keep=$1 text
    text=$(http_body "$ADMIN_PORT" /metrics) || text=""
    printf '%s\n' "$text" | grep access_log >"$keep" || true
    LOG_WRITTEN=$(awk '$1 == "portcullis_access_log_lines_total{result=\"written\"}" {print $2}' "$keep")
    LOG_DROPPED=$(awk '$1 == "portcullis_access_log_lines_total{result=\"dropped\"}" {print $2}' "$keep")
}

count_lines() { # file -> lines, or empty when there is no such file
    if [[ -f $1 ]]; then wc -l <"$1" | tr -d ' '; fi
}

# ---------------------------------------------------------------- setup

{
    machine_info
    echo "gateway:   $("$BIN" --version 2>&1 | head -n1) ($PORTCULLIS_BIN, built $(date -u -r "$PORTCULLIS_BIN" +%Y-%m-%dT%H:%M:%SZ))"
    if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
        dirty=$(git -C "$ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null | wc -l)
        echo "source:    $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$( ((dirty)) && echo " + $dirty uncommitted file(s) under src/ or Cargo.*")"
    fi
} | tee "$RUN/machine.txt"
echo "gateway on CPU $PROXY_CPU; upstream nginx and wrk on CPU $LOAD_CPU"

for side in A B; do write_gateway_conf "$side"; done
cmp -s "$RUN/gateway-A.toml" "$RUN/gateway-B.toml" && log "A and B configs are identical: this is an A/A test"
for side in A B; do
    shown=${EXTRA[$side]}
    if [[ $side == B && -n $B_SUMMARY ]]; then shown=$B_SUMMARY; fi
    echo "config $side ($(printf '%s' "${LABEL[$side]}")): base${shown:+ + $(printf '%s' "$shown" | tr '\n' ' ' | sed 's/ *$//')}"
done
echo

write_upstream_nginx_conf "$RUN" "$UPSTREAM_PORT"
nginx -t -p "$RUN" -c "$RUN/upstream.conf" -e "$RUN/upstream-error.log" >"$RUN/nginx-t.log" 2>&1 ||
    { cat "$RUN/nginx-t.log" >&2; die "upstream nginx config rejected"; }
taskset -c "$LOAD_CPU" nginx -p "$RUN" -c "$RUN/upstream.conf" -e "$RUN/upstream-error.log" \
    >"$RUN/upstream.stdout" 2>&1 &
UPSTREAM_PID=$!
wait_port "$UPSTREAM_PORT" "$UPSTREAM_PID" || { cat "$RUN/upstream-error.log" >&2; die "upstream nginx did not start"; }

# ---------------------------------------------------------------- measure

CLK_TCK=$(getconf CLK_TCK)
CSV="$OUT/$OUT_NAME-rounds.csv"
echo "round,position,config,label,duration_s,requests,req_per_s,p50_ms,p99_ms,proxy_cpu_s,req_per_proxy_cpu_s,non_2xx_3xx,socket_errors,other_cpu_s,wrk_requests_total,log_lines,log_written,log_dropped,log_lines_after_stop,kept" >"$CSV"

WARNINGS=()
# One measured run on a fresh gateway: wait for a quiet machine, start, check the route,
# warm up, measure, read the access log figures, stop, delete the log. Sets DISCARDED=1
# when other load spoiled the run and $4 says another attempt is allowed.
measure_once() { # round position side may_retry
    local round=$1 pos=$2 side=$3 may_retry=$4 label=${LABEL[$3]}
    local url="http://127.0.0.1:$GATEWAY_PORT$BENCH_PATH" out warm warm_reqs
    local limit=$((DURATION_S + 30)) tag="r$1-$3"
    if ((WAIT_IDLE > 0)) && ! wait_idle 0; then
        log "machine busy before round $round $side; waiting up to ${WAIT_IDLE}s for it to settle"
        wait_idle "$WAIT_IDLE" || log "still busy; measuring anyway"
    fi
    start_gateway "$side"
    check_route "$side"
    warm=$(timeout "$(($(duration_secs "$WARMUP") + 30))" taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "${WRK_HEADER_ARGS[@]}" "$url")
    warm_reqs=$(awk '/ requests in / {print $1; exit}' <<<"$warm")
    local m0 m1 u0 u1 w0 w1 t0 t1
    m0=$(machine_busy_ticks) u0=$(cpu_ticks "$UPSTREAM_PID") w0=$(children_ticks)
    t0=$(cpu_ticks "$GW_PID")
    out=$(timeout "$limit" taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "${WRK_HEADER_ARGS[@]}" "$url")
    t1=$(cpu_ticks "$GW_PID")
    m1=$(machine_busy_ticks) u1=$(cpu_ticks "$UPSTREAM_PID") w1=$(children_ticks)
    local other_s
    other_s=$(awk -v m=$((m1 - m0)) -v p=$((t1 - t0)) -v u=$((u1 - u0)) -v w=$((w1 - w0)) -v hz="$CLK_TCK" \
        'BEGIN {o = (m - p - u - w) / hz; if (o < 0) o = 0; printf "%.2f", o}')
    printf '%s\n' "$out" >"$RUN/wrk-$tag.txt"
    parse_wrk "$out" || { printf '%s\n' "$out" >&2; die "could not parse wrk output ($side, round $round)"; }
    kill -0 "$GW_PID" 2>/dev/null || die "gateway $side exited during round $round"
    # Requests wrk completed on this gateway: the route check, the warm-up and the run.
    # (Requests still in flight when a wrk run stops are not in its count but may be
    # logged: up to CONNECTIONS per wrk run.)
    local wrk_total=$((1 + ${warm_reqs:-0} + WRK_REQS))

    # Access log: wait for its counters to stop moving, then count the file's lines.
    local lines="" lines_after="" logf=${LOGFILE[$side]:-} i prev=-1 now
    LOG_WRITTEN="" LOG_DROPPED=""
    read_log_counters "$RUN/metrics-$tag.txt"
    if [[ -n $LOG_WRITTEN ]]; then
        for ((i = 0; i < SETTLE_S * 4; i++)); do
            now=$((LOG_WRITTEN + LOG_DROPPED))
            ((now >= wrk_total && now == prev)) && break
            prev=$now
            sleep 0.25
            read_log_counters "$RUN/metrics-$tag.txt"
        done
    fi
    if [[ -n $logf && $logf != stdout ]]; then lines=$(count_lines "$logf"); fi
    stop_gateway
    if [[ -n $logf ]]; then
        if [[ $logf == stdout ]]; then
            lines_after=$(grep -c '^{' "$RUN/gateway-$side.stdout" || true)
        else
            lines_after=$(count_lines "$logf")
            if [[ $logf == "$RUN"/* ]]; then rm -f "$logf"; fi
        fi
    fi

    local cpu_s per_cpu
    cpu_s=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN {printf "%.2f", (b - a) / hz}')
    per_cpu=$(awk -v r="$WRK_REQS" -v c="$cpu_s" 'BEGIN {if (c > 0) printf "%.0f", r / c; else print "inf"}')
    local kept=1 note=""
    if awk -v o="$other_s" -v d="$DURATION_S" 'BEGIN {exit !(o > 0.1 * d)}'; then
        if ((may_retry)); then
            kept=0 DISCARDED=1 note="  [discarded: machine busy]"
        else
            WARNINGS+=("round $round $label: other processes used ${other_s} CPU-s during the run (machine not idle)")
        fi
    fi
    if ((WRK_NON2XX + WRK_SOCKERR > 0)); then
        note+="  [non-2xx $WRK_NON2XX, socket errors $WRK_SOCKERR]"
        if ((kept)); then WARNINGS+=("round $round $label: $WRK_NON2XX non-2xx/3xx responses, $WRK_SOCKERR socket errors"); fi
    fi
    local logcheck=""
    if [[ -n $LOG_WRITTEN || -n $lines ]]; then
        logcheck="  log: ${lines:-?} lines (${lines_after:-?} after stop), written ${LOG_WRITTEN:-?}, dropped ${LOG_DROPPED:-?}, wrk ${wrk_total}"
        if ((kept)); then
            if [[ -n $LOG_DROPPED ]] && ((LOG_DROPPED > 0)); then
                WARNINGS+=("round $round $label: the gateway dropped $LOG_DROPPED access log lines")
            fi
            if [[ -n $lines ]] && ((lines < wrk_total)); then
                WARNINGS+=("round $round $label: $lines access log lines for $wrk_total requests wrk completed ($((wrk_total - lines)) missing)")
            fi
            if [[ -n $lines ]] && ((lines > wrk_total + 2 * CONNECTIONS)); then
                WARNINGS+=("round $round $label: $lines access log lines, more than $wrk_total requests + $CONNECTIONS in flight per wrk run")
            fi
            if [[ -n $lines && -n $LOG_WRITTEN ]] && ((lines != LOG_WRITTEN)); then
                WARNINGS+=("round $round $label: $lines lines in the file but the gateway counted $LOG_WRITTEN written")
            fi
        fi
    elif [[ -n $logf && $logf != stdout ]]; then
        if ((kept)); then WARNINGS+=("round $round $label: config has an access log but neither the file nor the admin counters were found"); fi
    fi
    echo "$round,$pos,$side,${label//,/;},$WRK_DUR_S,$WRK_REQS,$WRK_RPS,$WRK_P50_MS,$WRK_P99_MS,$cpu_s,$per_cpu,$WRK_NON2XX,$WRK_SOCKERR,$other_s,$wrk_total,$lines,$LOG_WRITTEN,$LOG_DROPPED,$lines_after,$kept" >>"$CSV"
    printf '  round %d  %s %-12s %8.0f req/s  p50 %7.3f ms  p99 %8.3f ms  cpu %5.2f s  %7s req/cpu-s  other %5.2f cpu-s%s%s\n' \
        "$round" "$side" "$label" "$WRK_RPS" "$WRK_P50_MS" "$WRK_P99_MS" "$cpu_s" "$per_cpu" "$other_s" "$note" "$logcheck"
}

run_one() { # round position side
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
        run_one "$r" 1 A
        run_one "$r" 2 B
    else
        run_one "$r" 1 B
        run_one "$r" 2 A
    fi
done
echo

# ---------------------------------------------------------------- report

declare -A M
for side in A B; do
    M[$side.rps]=$(csv_median "$CSV" 3 "$side" 7)
    M[$side.p50]=$(csv_median "$CSV" 3 "$side" 8)
    M[$side.p99]=$(csv_median "$CSV" 3 "$side" 9)
    M[$side.cpu]=$(csv_median "$CSV" 3 "$side" 10)
    M[$side.percpu]=$(csv_median "$CSV" 3 "$side" 11)
    M[$side.other]=$(csv_median "$CSV" 3 "$side" 14)
    M[$side.bad]=$(($(csv_sum "$CSV" 3 "$side" 12) + $(csv_sum "$CSV" 3 "$side" 13)))
    # Gateway CPU per request, in microseconds.
    M[$side.us]=$(awk -v p="${M[$side.percpu]}" 'BEGIN {if (p > 0) printf "%.2f", 1e6 / p; else print "n/a"}')
done
R_RPS=$(ratio "${M[B.rps]}" "${M[A.rps]}")
R_PERCPU=$(ratio "${M[B.percpu]}" "${M[A.percpu]}")
R_P50=$(ratio "${M[B.p50]}" "${M[A.p50]}")
R_P99=$(ratio "${M[B.p99]}" "${M[A.p99]}")
D_US=$(awk -v a="${M[A.us]}" -v b="${M[B.us]}" 'BEGIN {if (a + 0 > 0 && b + 0 > 0) printf "%+.2f", b - a; else print "n/a"}')

table() { # text | md
    local side
    if [[ $1 == md ]]; then
        echo "| config | req/s | req per proxy-CPU-s | gateway CPU µs per req | proxy CPU s per run | p50 ms | p99 ms | non-2xx + socket errors | other load CPU s per run |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        for side in A B; do
            printf '| %s: %s | %.0f | %.0f | %s | %.2f | %.3f | %.3f | %d | %.2f |\n' "$side" "${LABEL[$side]}" \
                "${M[$side.rps]}" "${M[$side.percpu]}" "${M[$side.us]}" "${M[$side.cpu]}" "${M[$side.p50]}" \
                "${M[$side.p99]}" "${M[$side.bad]}" "${M[$side.other]}"
        done
        printf '| **B / A** | %s | **%s** | %s | | %s | **%s** | | |\n' "$R_RPS" "$R_PERCPU" "$D_US" "$R_P50" "$R_P99"
    else
        printf '%-18s %10s %16s %10s %10s %9s %9s %8s %12s\n' config req/s req/proxy-cpu-s cpu-us/req cpu-s/run \
            p50-ms p99-ms errors other-cpu-s
        for side in A B; do
            printf '%-18s %10.0f %16.0f %10s %10.2f %9.3f %9.3f %8d %12.2f\n' "$side: ${LABEL[$side]:0:15}" \
                "${M[$side.rps]}" "${M[$side.percpu]}" "${M[$side.us]}" "${M[$side.cpu]}" "${M[$side.p50]}" \
                "${M[$side.p99]}" "${M[$side.bad]}" "${M[$side.other]}"
        done
        printf '%-18s %10s %16s %10s %10s %9s %9s\n' "ratio B/A" "$R_RPS" "$R_PERCPU" "$D_US" "" "$R_P50" "$R_P99"
    fi
}

# Per-run access log figures, for the sides that have an access log.
log_table() { # text | md
    local any
    any=$(awk -F, 'NR > 1 && ($16 != "" || $17 != "") {print 1; exit}' "$CSV")
    [[ -n $any ]] || return 0
    if [[ $1 == md ]]; then
        echo "| round | config | requests wrk completed (check + warm-up + run) | log lines before stop | written (metric) | dropped (metric) | lines − requests | lines after stop | kept |"
        echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
        awk -F, 'NR > 1 && ($16 != "" || $17 != "") {
            d = ($16 != "") ? $16 - $15 : "";
            printf "| %s | %s: %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $3, $4, $15, $16, $17, $18, d, $19, $20 }' "$CSV"
    else
        printf '%5s %-14s %12s %12s %12s %9s %10s %12s %5s\n' round config wrk-requests log-lines written dropped \
            lines-wrk after-stop kept
        awk -F, 'NR > 1 && ($16 != "" || $17 != "") {
            d = ($16 != "") ? $16 - $15 : "";
            printf "%5s %-14s %12s %12s %12s %9s %10s %12s %5s\n", $1, $3 ": " substr($4, 1, 11), $15, $16, $17, $18, d, $19, $20 }' "$CSV"
    fi
}

echo "medians over $ROUNDS rounds (each $DURATION, $CONNECTIONS connections):"
table text
if [[ -n $(log_table text) ]]; then
    echo
    echo "access log per run (lines counted before stopping the gateway; requests in flight when wrk stops may add up to $CONNECTIONS lines per wrk run):"
    log_table text
fi
for w in "${WARNINGS[@]}"; do log "warning: $w"; done

{
    echo "# Gateway A/B: ${LABEL[A]} vs ${LABEL[B]}"
    echo
    echo '```'
    cat "$RUN/machine.txt"
    echo '```'
    echo
    echo "Command: \`$(for v in ROUNDS DURATION WARMUP CONNECTIONS; do printf '%s=%s ' "$v" "${!v}"; done)loadtest/gateway-ab.sh\`"
    echo
    echo "Medians over $ROUNDS interleaved rounds (A first in odd rounds), each \`wrk -t1 -c$CONNECTIONS -d$DURATION --latency\` after a $WARMUP warm-up, on a gateway started afresh for each run."
    echo "Gateway (\`portcullis run --workers 1\`, GET $BENCH_PATH → upstream) pinned to CPU $PROXY_CPU; upstream nginx (\`return 200 \"hello\\n\"\`) and wrk pinned to CPU $LOAD_CPU."
    if [[ -n $GATEWAY_ENV ]]; then echo "Gateway environment: \`$GATEWAY_ENV\`."; fi
    echo
    for side in A B; do
        if [[ -n ${EXTRA[$side]} ]]; then
            echo "- **$side: ${LABEL[$side]}**: the base config plus"
            echo
            shown=${EXTRA[$side]}
            if [[ $side == B && -n $B_SUMMARY ]]; then shown=$B_SUMMARY; fi
            echo '  ```toml'
            printf '%s\n' "$shown" | sed 's/^/  /'
            echo '  ```'
        else
            echo "- **$side: ${LABEL[$side]}**: the base config (one route to the upstream)"
        fi
    done
    echo
    table md
    echo
    echo "Ratios are B / A: below 1 for req per proxy-CPU-second, or above 1 for p99, is what B costs."
    echo "\"gateway CPU µs per req\" is 1e6 ÷ req per proxy-CPU-s; its B / A cell is the difference B − A in µs per request."
    echo "\"Other load\" is CPU time used on the whole machine during a run by anything but the gateway, the upstream and wrk;"
    echo "runs above 10% of a core were discarded and measured again (up to $RETRY_BUSY times; \`kept=0\` in the CSV)."
    if [[ -n $(log_table md) ]]; then
        echo
        echo "Access log per run: lines in the file and \`portcullis_access_log_lines_total\` read from the admin endpoint"
        echo "once the counters stopped moving, before stopping the gateway. wrk's count covers the route check, the warm-up and the run;"
        echo "requests in flight when a wrk run stops are not in it but may be logged (up to $CONNECTIONS per wrk run)."
        echo
        log_table md
    fi
    echo
    echo "Per-run numbers: \`loadtest/out/$OUT_NAME-rounds.csv\`."
    if ((${#WARNINGS[@]})); then
        echo
        for w in "${WARNINGS[@]}"; do echo "- warning: $w"; done
    fi
} >"$OUT/$OUT_NAME.md"
log "wrote $OUT/$OUT_NAME.md and $CSV"
