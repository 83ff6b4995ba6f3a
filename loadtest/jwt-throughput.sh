#!/usr/bin/env bash
# Throughput with JWT (ES256) authentication on every request against plain
# proxying, in one run: gateway-ab.sh with A = the plain bench gateway and B =
# the same with `authentication = { type = "jwt", ... }` on its deployment.
# Both sides receive the same request (with the token header); A forwards it,
# B verifies the ES256 signature and claims first.
#
#   loadtest/jwt-throughput.sh                      # 5 rounds x 10 s
#   ROUNDS=1 DURATION=3s loadtest/jwt-throughput.sh # quick check
#   TOKEN_CACHE_SIZE=0 loadtest/jwt-throughput.sh   # verify the signature on every request
#
# wrk repeats one token, so with the default verified-token cache the
# signature is checked about once per minute per worker; TOKEN_CACHE_SIZE=0
# measures a full ES256 verification on every request.
# Results: loadtest/out/jwt-throughput.md (and -rounds.csv). Other variables as
# for gateway-ab.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

KEYS=$(mktemp -d)
trap 'rm -rf "$KEYS"' EXIT
(cd "$ROOT" && cargo run --quiet --release --example mint_jwt -- "$KEYS") >"$KEYS/token"
TOKEN=$(cat "$KEYS/token")
[[ -n $TOKEN ]] || { echo "jwt-throughput: no token minted" >&2; exit 1; }

AUTH_TOML="[deployments.authentication]
type = \"jwt\"
issuers = [\"https://issuer.bench\"]
audiences = [\"bench\"]
public_keys = { type = \"static_keys\", jwks_file = \"$KEYS/jwks.json\" }"
B_LABEL="jwt es256"
if [[ -n ${TOKEN_CACHE_SIZE:-} ]]; then
    AUTH_TOML+=$'\n'"token_cache_size = $TOKEN_CACHE_SIZE"
    B_LABEL="jwt es256, token cache $TOKEN_CACHE_SIZE"
fi

A_LABEL=plain A_EXTRA_TOML="" \
    B_LABEL="$B_LABEL" B_EXTRA_TOML="$AUTH_TOML" \
    REQUEST_HEADER="Authorization: Bearer $TOKEN" \
    OUT_NAME=${OUT_NAME:-jwt-throughput} \
    "$HERE/gateway-ab.sh"
