#!/usr/bin/env bash
# Checks that the system calls the gateway makes are all allowed by the unit's filter
# (SystemCallFilter=@system-service io_uring_setup io_uring_enter io_uring_register,
# minus @privileged): runs the debug build under `strace -f` through a start, a request,
# a reload (SIGHUP), a log reopen (SIGUSR1), a takeover by SIGUSR2 (the successor is
# traced too) and a stop, then compares the calls seen with systemd-analyze's sets.
# Installs strace and systemd-analyze (Debian packages) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in strace:strace systemd-analyze:systemd; do
    if ! command -v "${tool%%:*}" >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${tool#*:}" >/dev/null
    fi
done
[[ -x target/debug/portcullis ]] || cargo build --locked
bin=$(realpath target/debug/portcullis)

work=$(mktemp -d)
tracer=
cleanup() {
    for pid in $(cat "$work/pids" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    if [[ -n $tracer ]]; then wait "$tracer" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/gw.toml" <<TOML
admin = "127.0.0.1:0"
[access_log]
path = "$work/access.log"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
[[deployments]]
name = "d"
listener = "public"
[[deployments.routes]]
path = "/h"
backend = { type = "stock", status = 200 }
TOML

strace -f -qq -o "$work/trace" "$bin" run --config "$work/gw.toml" --control-socket "$work/control.sock" \
    --workers 2 2>"$work/gw.log" &
tracer=$!
for _ in $(seq 100); do grep -q "started: serving" "$work/gw.log" && break; sleep 0.1; done
old=$(grep -o 'start=fresh' "$work/gw.log" >/dev/null && pgrep -P "$tracer" -x portcullis)
echo "$old" >"$work/pids"
port=$(grep -o 'listener=public address=127.0.0.1:[0-9]*' "$work/gw.log" | head -n1 | cut -d: -f2)
ask() {
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
    timeout 5 cat <&3 >/dev/null
    exec 3<&-
}
ask
kill -HUP "$old"; sleep 0.5
kill -USR1 "$old"; sleep 0.3
kill -USR2 "$old"
for _ in $(seq 100); do grep -q "handed over: drained" "$work/gw.log" && break; sleep 0.1; done
grep -q "handed over: drained" "$work/gw.log" || { cat "$work/gw.log" >&2; echo "check-syscalls: no takeover" >&2; exit 1; }
new=$(grep -o 'successor_pid=[0-9]*' "$work/gw.log" | head -n1 | cut -d= -f2)
echo "$new" >>"$work/pids"
ask
kill -TERM "$new"
wait "$tracer" || true
tracer=

awk '{ sub(/^[0-9]+ +/, ""); if (match($0, /^[a-z_0-9]+\(/)) print substr($0, 1, RLENGTH - 1) }' \
    "$work/trace" | sort -u >"$work/used"

# Expand a systemd syscall group (recursively) into one call per line.
expand() {
    systemd-analyze syscall-filter "$1" | awk 'NR > 1 && !/^ *#/ && NF { print $1 }' | while read -r item; do
        if [[ $item == @* ]]; then expand "$item"; else echo "$item"; fi
    done
}
{ expand @system-service; printf '%s\n' io_uring_setup io_uring_enter io_uring_register; } | sort -u >"$work/allowed"
expand @privileged | sort -u >"$work/denied"
bad=$(comm -23 "$work/used" "$work/allowed"; comm -12 "$work/used" "$work/denied")
echo "check-syscalls: $(wc -l <"$work/used") distinct system calls seen"
if [[ -n $bad ]]; then
    echo "check-syscalls: outside the unit's filter: $bad" >&2
    exit 1
fi
echo "check-syscalls: all allowed by the unit's SystemCallFilter"
