#!/usr/bin/env bash
# Installs what the test suite needs besides a Rust toolchain: Chromium, for
# the browser CORS test (tests/browser_cors.rs) and the load-test harness's
# HTML report test (loadtest/tests), and promtool (Debian package
# `prometheus`) for the /metrics format test (tests/metrics_format.rs).
# Idempotent: apt-get runs only when something is missing. Under CI=true a missing tool that cannot be
# installed is an error; elsewhere a warning (the browser test then skips).
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${missing[*]}; run as root to install" >&2
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# Keep the prometheus package's service from starting: only promtool is wanted.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
