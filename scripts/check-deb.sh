#!/usr/bin/env bash
# Checks the Debian package without touching this system: installs it with
# `dpkg --root` into a throwaway directory (maintainer scripts run there, with
# DPKG_ROOT set; they make the state and log directories and skip the system
# user and the service, which belong to a booted system), then checks that the
# expected files are laid down with the expected modes, that the config files
# are conffiles, that the installed binary accepts the installed config, and
# runs scripts/verify-unit.sh on the installed unit.
#
#   scripts/check-deb.sh [--dev | PACKAGE.deb]   (default: build one with package-deb.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

case ${1:-} in
    "" | --dev) deb=$(scripts/package-deb.sh ${1:-} | tail -n1) ;;
    *) deb=$1 ;;
esac
echo "check-deb: $deb"

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
# Dependencies (libc6, adduser) are the host's business, not the throwaway root's.
if ! dpkg --root="$root" --force-script-chrootless --force-depends --force-not-root \
    --log=/dev/null -i "$deb" >"$root/dpkg.out" 2>&1; then
    cat "$root/dpkg.out" >&2
    echo "check-deb: dpkg -i into the throwaway root failed" >&2
    exit 1
fi

fail=0
expect() { # TYPE PATH MODE
    local kind=$1 path=$2 mode=$3 actual
    if [[ $kind == f && ! -f $root$path ]] || [[ $kind == d && ! -d $root$path ]]; then
        echo "check-deb: missing $path" >&2
        fail=1
        return
    fi
    actual=$(stat -c %a "$root$path")
    if [[ $actual != "$mode" ]]; then
        echo "check-deb: $path has mode $actual, expected $mode" >&2
        fail=1
    fi
}
expect f /usr/bin/portcullis 755
expect f /lib/systemd/system/portcullis.service 644
expect f /etc/portcullis/gateway.toml 640
expect f /etc/logrotate.d/portcullis 644
expect f /usr/share/doc/portcullis/README.md 644
expect d /var/lib/portcullis 750
expect d /var/log/portcullis 755

conffiles=$(dpkg-deb -f "$deb" Package >/dev/null && dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)
for conf in /etc/portcullis/gateway.toml /etc/logrotate.d/portcullis; do
    grep -qx "$conf" <<<"$conffiles" || { echo "check-deb: $conf is not a conffile" >&2; fail=1; }
done
status=$(dpkg --root="$root" -s portcullis | grep '^Status:')
[[ $status == "Status: install ok installed" ]] || { echo "check-deb: $status" >&2; fail=1; }

"$root/usr/bin/portcullis" check --config "$root/etc/portcullis/gateway.toml" >/dev/null || {
    echo "check-deb: the installed binary rejects the installed config" >&2
    fail=1
}
grep -q 'kill --signal=SIGUSR1' "$root/etc/logrotate.d/portcullis" || {
    echo "check-deb: logrotate snippet does not signal a reopen" >&2
    fail=1
}
scripts/verify-unit.sh "$root/lib/systemd/system/portcullis.service" "$root/usr/bin/portcullis" || fail=1

# Smoke: start the installed binary with the unit's ExecStart and LimitNOFILE on the
# installed config (paths moved into the throwaway root, ports to free ones), ask for
# the default route, check the access log line, then rotate the log the way the
# logrotate snippet does (move, SIGUSR1) and check the gateway reopened it.
unit="$root/lib/systemd/system/portcullis.service"
sed -e "s#/var/log/portcullis#$root/var/log/portcullis#" -e 's#127.0.0.1:8080#127.0.0.1:0#' \
    -e 's#127.0.0.1:9901#127.0.0.1:0#' "$root/etc/portcullis/gateway.toml" >"$root/gateway.toml"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit" | sed -e "s#/usr/bin/portcullis#$root/usr/bin/portcullis#" \
    -e "s#/etc/portcullis/gateway.toml#$root/gateway.toml#" -e "s#/run/portcullis#$root#")
nofile=$(sed -n 's/^LimitNOFILE=//p' "$unit")
limit=(prlimit --nofile="$nofile:$nofile" --)
if ! "${limit[@]}" true 2>/dev/null; then
    # A container may forbid raising the hard limit even to root: size the
    # connection target to the limit there is instead.
    fit=$((($(ulimit -Hn) - 1000) / 2))
    echo "check-deb: cannot set LimitNOFILE=$nofile here; smoke test with --connections $fit"
    exec_start=$(sed -E "s/--connections [0-9]+/--connections $fit/" <<<"$exec_start")
    limit=()
fi
# shellcheck disable=SC2086 # ExecStart is a word list
"${limit[@]}" $exec_start 2>"$root/gateway.log" &
gateway=$!
for _ in $(seq 100); do grep -q "started: serving" "$root/gateway.log" && break; sleep 0.05; done
port=$(grep -o 'listener=public address=127.0.0.1:[0-9]*' "$root/gateway.log" | head -n1 | cut -d: -f2 || true)
ask() {
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /demo/hello HTTP/1.1\r\nHost: smoke\r\nConnection: close\r\n\r\n' >&3
    timeout 5 cat <&3
    exec 3<&-
}
if [[ -z $port ]] || ! ask | grep -q "Hello from Portcullis"; then
    cat "$root/gateway.log" >&2
    echo "check-deb: the installed gateway does not serve the default config" >&2
    fail=1
else
    log="$root/var/log/portcullis/access.log"
    sleep 0.3 # the access log is flushed every 50 ms
    grep -q '"path":"/demo/hello"' "$log" || { echo "check-deb: no access log line" >&2; fail=1; }
    mv "$log" "$log.1"
    kill -USR1 "$gateway"
    sleep 0.3
    ask >/dev/null
    sleep 0.3
    grep -q '"path":"/demo/hello"' "$log" 2>/dev/null || { echo "check-deb: access log not reopened after SIGUSR1" >&2; fail=1; }
fi
kill "$gateway" 2>/dev/null || true
wait "$gateway" 2>/dev/null || true

if [[ $fail != 0 ]]; then
    echo "check-deb: FAILED" >&2
    exit 1
fi
echo "check-deb: OK ($(dpkg-deb -f "$deb" Package Version Architecture | tr '\n' ' '))"
