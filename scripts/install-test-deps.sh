#!/usr/bin/env bash
# Installs what the test suite needs beyond a Rust toolchain, and nothing else:
# headless Chromium (the load-test harness's HTML report is opened in it).
# Idempotent: skips what is present; runs apt-get (update once, then install)
# only for what is missing, and only as root. Not root and something missing:
# says so and exits 0 (tests that need it fail under CI=true and skip otherwise).
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "install-test-deps: missing ${missing[*]}; run as root or: apt-get install -y ${missing[*]}" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-test-deps: installed ${missing[*]}" >&2
