#!/usr/bin/env bash
# Creates a self-signed ECDSA P-256 certificate for trying the TLS listener of
# config/gateway.toml on this machine: config/dev-tls/cert.pem and key.pem,
# valid 90 days for localhost and 127.0.0.1. Not for production.
#
#   scripts/make-dev-cert.sh            # then uncomment the TLS listener in config/gateway.toml
#   scripts/make-dev-cert.sh OUT_DIR    # write elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-config/dev-tls}
command -v openssl >/dev/null || { echo "openssl is needed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$OUT"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -days 90 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$OUT/key.pem" -out "$OUT/cert.pem" 2>/dev/null
chmod 600 "$OUT/key.pem"
echo "wrote $OUT/cert.pem and $OUT/key.pem (self-signed, localhost and 127.0.0.1, 90 days)"
