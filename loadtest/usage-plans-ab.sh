#!/usr/bin/env bash
# The cost of usage plans on every request, in the same run as plain proxying:
# B checks a client token (query parameter, hashed and looked up among
# SUBSCRIBERS subscribers), an entitlement rate limit, a daily quota and a
# deployment rate limit (limits high enough never to refuse); A proxies the same
# request plainly.
#
#   loadtest/usage-plans-ab.sh                        # 5 rounds x 10 s
#   ROUNDS=1 DURATION=3s loadtest/usage-plans-ab.sh   # quick check
#
# Everything else (layout, CPU accounting, output files) is gateway-ab.sh's.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOKEN=bench-token-0123456789abcdef
SUBSCRIBERS=${SUBSCRIBERS:-10000}
extra=$'[deployments.usage_plans]\ntoken_locations = ["query:api_key"]\n'
extra+=$'[deployments.rate_limit]\nrequests_per_second = 10000000\nkey = "total"\n'
extra+=$'[[usage_plans]]\nname = "gold"\n[[usage_plans.entitlements]]\nname = "bench"\ndeployments = ["bench"]\n'
extra+=$'rate_limit = { requests_per_second = 10000000 }\nquota = { limit = 1000000000000, period = "day" }\n'
extra+=$'[[subscribers]]\nname = "bench"\nusage_plans = ["gold"]\nclients = [{ name = "wrk", token = "'"$TOKEN"$'" }]\n'
subscribers=$(mktemp)
trap 'rm -f "$subscribers"' EXIT
for ((i = 1; i < SUBSCRIBERS; i++)); do
    printf '[[subscribers]]\nname = "s%d"\nusage_plans = ["gold"]\nclients = [{ name = "c", token = "token-%020d" }]\n' "$i" "$i"
done >"$subscribers"
export BENCH_PATH="/bench/hello?api_key=$TOKEN"
export A_LABEL=plain B_LABEL="usage plans"
export B_EXTRA_TOML="$extra" B_EXTRA_FILE="$subscribers"
export B_SUMMARY="$extra[[subscribers]] x $((SUBSCRIBERS - 1)) more (one client each)"
export OUT_NAME=${OUT_NAME:-usage-plans-ab}
"$HERE/gateway-ab.sh" "$@"
