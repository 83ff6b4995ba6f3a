#!/usr/bin/env bash
# Installs what `portcullis-load scenario` compares against, from Debian's
# packages, when it is missing: nginx (nginx-light), HAProxy, wrk (the
# cross-check), openssl (TLS scenarios' certificates) and taskset (pinning).
# Nothing is started: the packages' maintainer scripts are kept from starting
# the system nginx or HAProxy service. Needs root when something is missing.
#
#   loadtest/install-peers.sh
#   target/release/portcullis-load scenario all
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

ensure_tools "nginx:nginx-light|nginx" "haproxy:haproxy" "wrk:wrk" "openssl:openssl" "taskset:util-linux"
for tool in nginx haproxy wrk openssl taskset; do
    log "$tool: $(command -v "$tool")"
done
