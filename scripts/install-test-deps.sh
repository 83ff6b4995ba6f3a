#!/usr/bin/env bash
# Installs what the test suite needs besides a Rust toolchain: Chromium, for
# the browser CORS test (tests/browser_cors.rs) and the load-test harness's
# HTML report test (loadtest/tests), and promtool for the /metrics format test
# (tests/metrics_format.rs), and redis-server + redis-cli for the cluster tests
# (tests/cluster_*.rs: several gateway nodes sharing limits on Redis). promtool is taken out of Debian's `prometheus`
# package (downloaded, not installed: the Prometheus server, its web assets
# and its service are not needed) into /usr/local/bin.
# `install-test-deps.sh promtool` installs promtool alone.
# oauth2-mock-server (npm, a small OAuth2/OIDC provider) is the real token
# server of the back-end credentials test (tests/backend_credentials.rs);
# `install-test-deps.sh oauth2-mock-server` installs it alone (npm needed).
# Python's `websockets` (the WebSocket client and echo server of
# tests/websocket.rs) goes into a virtual environment,
# $HOME/.cache/portcullis-test-venv (python3-venv from apt if missing);
# `install-test-deps.sh websockets` installs it alone.
# Idempotent: apt-get runs only when something is missing. Under CI=true a missing tool that cannot be
# installed is an error; elsewhere a warning (the browser test then skips).
set -euo pipefail

need_chromium=0
need_promtool=0
need_redis=0
wanted=${*:-chromium promtool redis oauth2-mock-server websockets}
ws_venv="$HOME/.cache/portcullis-test-venv"
install_websockets() {
    "$ws_venv/bin/python" -c 'import websockets.asyncio.client' 2>/dev/null && return 0
    if [ ! -x "$ws_venv/bin/python" ] && ! python3 -m venv "$ws_venv"; then
        if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
            rm -rf "$ws_venv"
            DEBIAN_FRONTEND=noninteractive apt-get update
            DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
            python3 -m venv "$ws_venv" || return 1
        else
            return 1
        fi
    fi
    "$ws_venv/bin/pip" install --quiet 'websockets>=14,<16'
}
if [[ " $wanted " == *" websockets "* ]] && ! install_websockets; then
    echo "install-test-deps: cannot install Python websockets into $ws_venv" >&2
    [ "${CI:-}" = "true" ] && exit 1
fi
if [[ " $wanted " == *" oauth2-mock-server "* ]] && ! command -v oauth2-mock-server >/dev/null 2>&1; then
    if command -v npm >/dev/null 2>&1 && npm install -g oauth2-mock-server@9.3.0; then
        :
    else
        echo "install-test-deps: cannot install oauth2-mock-server (npm)" >&2
        [ "${CI:-}" = "true" ] && exit 1
    fi
fi
[[ " $wanted " == *" chromium "* ]] && ! command -v chromium >/dev/null 2>&1 && need_chromium=1
[[ " $wanted " == *" promtool "* ]] && ! command -v promtool >/dev/null 2>&1 && need_promtool=1
[[ " $wanted " == *" redis "* ]] && { ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; } && need_redis=1

if [ $need_chromium -eq 0 ] && [ $need_promtool -eq 0 ] && [ $need_redis -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing chromium, promtool or redis; run as root to install" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
if [ $need_chromium -eq 1 ]; then
    apt-get install -y --no-install-recommends chromium
fi
if [ $need_redis -eq 1 ]; then
    # The service Debian's package starts is not used: tests start their own.
    apt-get install -y --no-install-recommends redis-server redis-tools
    redis-server --version
fi
if [ $need_promtool -eq 1 ]; then
    work=$(mktemp -d)
    chmod a+rwx "$work" # apt downloads as its own user
    trap 'rm -rf "$work"' EXIT
    (cd "$work" && apt-get download prometheus)
    dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
    install -m 755 "$work/root/usr/bin/promtool" /usr/local/bin/promtool
    promtool --version | head -n1
fi
