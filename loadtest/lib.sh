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
http_get() {
    local port=$1 path=$2
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" >&3
        cat <&3' _ "$port" "$path"
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
