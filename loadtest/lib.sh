# Shared helpers for the load-test scripts in this directory. Sourced, not run.
# Everything here works on 127.0.0.1 only and starts nothing by itself.

# Print a timestamped progress line on stderr.
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Install the Debian packages named as "command:package[|fallback]" when the
# command is missing. Runs `apt-get update` at most once.
ensure_tools() {
    local spec cmd pkgs pkg missing=() updated=0
    for spec in "$@"; do
        cmd=${spec%%:*}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$spec")
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) -eq 0 ]] || die "missing ${missing[*]%%:*}; install them (apt-get install nginx-light wrk) or run as root"
    # Never let the package's maintainer scripts start the system nginx service:
    # use the standard policy-rc.d hook if the machine does not already have one.
    local own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
    fi
    for spec in "${missing[@]}"; do
        cmd=${spec%%:*}
        pkgs=${spec#*:}
        if ((updated == 0)); then
            log "apt-get update"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            updated=1
        fi
        local ok=0
        IFS='|' read -r -a alts <<<"$pkgs"
        for pkg in "${alts[@]}"; do
            if apt-cache show "$pkg" >/dev/null 2>&1; then
                log "apt-get install -y $pkg (for $cmd)"
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null && ok=1 && break
            fi
        done
        ((ok)) || { ((own_policy)) && rm -f /usr/sbin/policy-rc.d; die "could not install $cmd (tried $pkgs)"; }
    done
    ((own_policy)) && rm -f /usr/sbin/policy-rc.d
    return 0
}

# Succeeds when something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Wait until 127.0.0.1:$1 accepts connections, or fail after $3 seconds
# (default 15) or as soon as process $2 is gone.
wait_port() {
    local port=$1 pid=$2 limit=${3:-15} i
    for ((i = 0; i < limit * 20; i++)); do
        port_open "$port" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# One GET over a fresh connection (Connection: close); prints the raw response.
http_get() { # port path [extra header line, e.g. "Authorization: Bearer x"]
    local port=$1 path=$2 extra=${3:+$3$'\r\n'}
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n" "$2" "$3" >&3
        cat <&3' _ "$port" "$path" "$extra"
}

# utime+stime (clock ticks) of process $1 and its direct children, e.g. an
# nginx master and its worker. Threads are included by the kernel.
cpu_ticks() {
    local pid total=0 stat rest
    local -a f
    for pid in "$1" $(cat "/proc/$1/task/"*/children 2>/dev/null); do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        rest=${stat##*) }
        read -r -a f <<<"$rest"
        # f[0] is field 3 (state); utime is field 14, stime field 15.
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# Busy CPU ticks of the whole machine, all CPUs (user nice system irq softirq steal).
machine_busy_ticks() {
    awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat
}

# Wait until the machine is quiet: less than 5% of one CPU busy over a 1 s sample,
# for at most $1 seconds. Returns 1 if it never got quiet.
wait_idle() {
    local limit=$1 start=$SECONDS a b hz
    hz=$(getconf CLK_TCK)
    while :; do
        a=$(machine_busy_ticks)
        sleep 1
        b=$(machine_busy_ticks)
        (((b - a) * 20 < hz)) && return 0
        ((SECONDS - start < limit)) || return 1
    done
}

# CPU ticks used by the waited-for children of this shell (cutime + cstime).
children_ticks() {
    local stat rest
    local -a f
    stat=$(cat "/proc/$$/stat")
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    echo $((f[13] + f[14]))
}

# Resident set size of process $1 in KiB (VmRSS).
rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# Stop the processes whose PIDs are given: SIGTERM, up to 5 s grace, then SIGKILL.
stop_pids() {
    local pid i alive
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

# Raise the soft open-files limit to the hard limit (at most 1048576) or
# 65536, whichever is reachable.
raise_nofile() {
    local hard
    hard=$(ulimit -Hn)
    if [[ $hard == unlimited ]] || ((hard > 1048576)); then hard=1048576; fi
    ulimit -Sn "$hard" 2>/dev/null || ulimit -Sn 65536 2>/dev/null || true
}

# Print the machine and tool versions the figures were taken on.
machine_info() {
    echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpus:      $(nproc) (nproc)"
    echo "cpu model: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "kernel:    $(uname -srm)"
    if command -v nginx >/dev/null 2>&1; then echo "nginx:     $(nginx -v 2>&1)"; fi
    if command -v wrk >/dev/null 2>&1; then echo "wrk:       $( (wrk -v 2>&1 || true) | head -n1)"; fi
}

# ---------------------------------------------------------------- used by gateway-ab.sh

# wrk duration (10s, 500ms, 2m, 1h, or bare seconds) -> whole seconds.
duration_secs() {
    local d=$1
    case $d in
        *ms) echo 1 ;;
        *s) echo "${d%s}" ;;
        *m) echo $((${d%m} * 60)) ;;
        *h) echo $((${d%h} * 3600)) ;;
        *) echo "$d" ;;
    esac
}

# wrk latency figure (e.g. 512.00us, 1.23ms, 1.01s) -> milliseconds.
wrk_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) ; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
        printf "%.3f", n }'
}

# Parse the output of `wrk --latency` (in $1) into WRK_REQS, WRK_DUR_S, WRK_RPS,
# WRK_P50_MS, WRK_P99_MS, WRK_NON2XX and WRK_SOCKERR. Returns 1 if it has no totals.
parse_wrk() {
    local out=$1 dur
    WRK_REQS=$(awk '/ requests in / {print $1; exit}' <<<"$out")
    dur=$(awk '/ requests in / {d = $4; sub(/,$/, "", d); print d; exit}' <<<"$out")
    WRK_DUR_S=$(awk -v ms="$(wrk_ms "$dur")" 'BEGIN {printf "%.2f", ms / 1000}')
    WRK_RPS=$(awk '/^Requests\/sec:/ {print $2; exit}' <<<"$out")
    WRK_P50_MS=$(wrk_ms "$(awk '$1 == "50%" {print $2; exit}' <<<"$out")")
    WRK_P99_MS=$(wrk_ms "$(awk '$1 == "99%" {print $2; exit}' <<<"$out")")
    WRK_NON2XX=$(awk '/Non-2xx or 3xx responses:/ {print $NF; exit}' <<<"$out")
    WRK_SOCKERR=$(awk '/Socket errors:/ {
        s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i + 0; print s; exit }' <<<"$out")
    WRK_NON2XX=${WRK_NON2XX:-0}
    WRK_SOCKERR=${WRK_SOCKERR:-0}
    [[ -n $WRK_REQS && -n $WRK_RPS ]]
}

# Median of column $4 of CSV file $1 over the rows whose column $2 equals $3 and
# whose last column ("kept") is 1. Prints nothing when no row matches.
csv_median() {
    awk -F, -v k="$2" -v want="$3" -v c="$4" 'NR > 1 && $k == want && $NF == 1 {print $c}' "$1" | sort -g |
        awk '{v[NR] = $1} END {if (NR == 0) exit; if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# Sum of column $4 of CSV file $1 over the kept rows whose column $2 equals $3.
csv_sum() {
    awk -F, -v k="$2" -v want="$3" -v c="$4" 'NR > 1 && $k == want && $NF == 1 {s += $c} END {print s + 0}' "$1"
}

# nginx config preamble for a foreground nginx named $2 whose pid, logs and temp
# paths all live under the run directory $1: one worker, no access log. Opens the
# http block; the caller writes its servers and the closing brace.
nginx_preamble() {
    local run=$1 name=$2
    mkdir -p "$run/$name-tmp"
    printf '%s\n' \
        "daemon off;" \
        "master_process on;" \
        "worker_processes 1;" \
        "pid $run/$name.pid;" \
        "error_log $run/$name-error.log warn;" \
        "events { worker_connections 16384; multi_accept on; }" \
        "http {" \
        "    access_log off;" \
        "    client_body_temp_path $run/$name-tmp/body;" \
        "    proxy_temp_path $run/$name-tmp/proxy;" \
        "    fastcgi_temp_path $run/$name-tmp/fastcgi;" \
        "    uwsgi_temp_path $run/$name-tmp/uwsgi;" \
        "    scgi_temp_path $run/$name-tmp/scgi;" \
        "    keepalive_timeout 75s;" \
        "    keepalive_requests 1000000;"
}

# The benchmark upstream: nginx on 127.0.0.1:$2
# answering GET /hello with 200 "hello\n". Writes $1/upstream.conf.
write_upstream_nginx_conf() {
    local run=$1 port=$2
    {
        nginx_preamble "$run" upstream
        printf '%s\n' \
            "    server {" \
            "        listen 127.0.0.1:$port reuseport backlog=4096;" \
            "        location = /hello { default_type text/plain; return 200 \"hello\\n\"; }" \
            "        location / { return 404; }" \
            "    }" \
            "}"
    } >"$run/upstream.conf"
}

# Succeeds when the binary $1 is missing, or older than a file under $2/src or
# $2/Cargo.toml / $2/Cargo.lock (the crate it is built from).
binary_stale() {
    local bin=$1 root=$2
    [[ -x $bin ]] || return 0
    [[ -n $(find "$root/src" "$root/Cargo.toml" "$root/Cargo.lock" -newer "$bin" -print -quit 2>/dev/null) ]]
}

# `cargo build --release` in $1, at most $2 attempts, $3 seconds apart (someone may
# be halfway through an edit, or building too). Output of the last attempt in $4.
build_release() {
    local root=$1 tries=$2 pause=$3 logf=$4 i
    for ((i = 1; i <= tries; i++)); do
        log "cargo build --release in $root (attempt $i of $tries)"
        if (cd "$root" && cargo build --release) >"$logf" 2>&1; then return 0; fi
        grep -m 3 -E '^error' "$logf" >&2 || tail -n 5 "$logf" >&2
        if ((i < tries)); then
            log "build failed; retrying in ${pause}s"
            sleep "$pause"
        fi
    done
    return 1
}

# One GET of http://127.0.0.1:$1$2 with curl (or bash's /dev/tcp); prints the body.
http_body() {
    local port=$1 path=$2
    if command -v curl >/dev/null 2>&1; then
        curl -s --max-time 5 "http://127.0.0.1:$port$path"
    else
        http_get "$port" "$path" | tr -d '\r' | sed '1,/^$/d'
    fi
}

# a / b to two decimals ("n/a" when b is 0).
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'; }

# The benchmark gateway config: a listener on 127.0.0.1:$1 and a route
# GET /bench/hello to the upstream on 127.0.0.1:$2; with $3, the admin endpoint
# on 127.0.0.1:$3 (top-level keys must come before any table).
bench_gateway_toml() {
    local gateway_port=$1 upstream_port=$2 admin_port=${3:-}
    if [[ -n $admin_port ]]; then printf 'admin = "127.0.0.1:%s"\n\n' "$admin_port"; fi
    cat <<EOF
[[listeners]]
name = "public"
address = "127.0.0.1:$gateway_port"

[[deployments]]
name = "bench"
listener = "public"
path_prefix = "/bench"

[[deployments.routes]]
path = "/hello"
methods = ["GET"]
backend = { type = "http", url = "http://127.0.0.1:$upstream_port/hello" }
EOF
}

