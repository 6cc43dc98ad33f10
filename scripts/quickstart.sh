#!/usr/bin/env bash
# Quickstart: a full login -> token -> refresh -> logout cycle with the `tessera` CLI against the
# embedded reference identity server. Needs only a Rust toolchain; touches nothing outside a
# temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building the tessera CLI and the reference IdP (tessera-idp, which \`tessera idp\` runs)" >&2
cargo build --quiet -p tessera-cli -p tessera-idp
tessera="${CARGO_TARGET_DIR:-target}/debug/tessera"

work=$(mktemp -d)
idp_pid=""
cleanup() { if [ -n "$idp_pid" ]; then kill "$idp_pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT

echo "==> starting the reference IdP (access tokens live 4 s, refresh tokens rotate)" >&2
"$tessera" idp serve --access-ttl 4 >"$work/issuer" 2>"$work/idp.log" &
idp_pid=$!
for _ in $(seq 50); do [ -s "$work/issuer" ] && break; sleep 0.1; done
issuer=$(head -n1 "$work/issuer")
[ -n "$issuer" ] || { cat "$work/idp.log" >&2; echo "the IdP did not start" >&2; exit 1; }

export TESSERA_HOME="$work/home"
mkdir -p "$TESSERA_HOME"
cat >"$TESSERA_HOME/config.toml" <<TOML
current_context = "demo"

[[contexts]]
name = "demo"

[[contexts.auth_providers]]
name = "idp"
type = "password"
issuer = "$issuer"
client_id = "confidential-client"
client_secret = "env:DEMO_CLIENT_SECRET"
username = "bob"
password = "env:DEMO_PASSWORD"
totp_secret = "env:DEMO_TOTP_SECRET"   # bob has two-factor auth: codes are generated from the secret
scope = "openid api:read"
TOML
export DEMO_CLIENT_SECRET=confidential-secret DEMO_PASSWORD=bob-password DEMO_TOTP_SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP

step() { echo; echo "\$ $*" >&2; "$@"; }
step "$tessera" login
first=$("$tessera" token)
echo "\$ tessera token   # -> eyJ...${first: -16} (a signed JWT)" >&2
step "$tessera" status
echo; echo "(waiting 4 s for the access token to expire)" >&2; sleep 4
second=$("$tessera" token)
echo "\$ tessera token   # -> eyJ...${second: -16} (new: refreshed with the rotating refresh token)" >&2
[ "$first" != "$second" ] || { echo "expected a refreshed token" >&2; exit 1; }
whoami=$(python3 -c 'import sys, urllib.request as u; print(u.urlopen(u.Request(sys.argv[1] + "/api/whoami", headers={"Authorization": "Bearer " + sys.argv[2]})).read().decode())' "$issuer" "$second")
echo "GET /api/whoami with it -> $whoami" >&2
step "$tessera" refresh --force
step "$tessera" logout
step "$tessera" status
echo; echo "quickstart: login -> token -> refresh -> logout completed" >&2
