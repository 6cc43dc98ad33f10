#!/usr/bin/env bash
# `tessera token` on a valid cached token vs. an msal (Python) script reading its token cache,
# side by side in one hyperfine run. Not part of CI: needs hyperfine, Python 3 and network access
# to PyPI once (for msal, installed into a venv outside the clone).
#
#   benches/token_fast_path/run.sh            # builds the CLI (profile release-cli), prints a markdown table
#   RUNS=500 benches/token_fast_path/run.sh
#   BEFORE_BIN=/tmp/tessera-88428e0 benches/token_fast_path/run.sh   # an older build in the same run
#   TESSERA_BIN=/path/to/tessera ...          # measure this binary instead of building one
#
# The table gives each median as a multiple of `/bin/true` (process start alone): the goal of
# issue 19 is `tessera token` <= 1.5x. `uptime` is printed first: other builds on the machine
# move every number, so compare only rows of one run.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
runs=${RUNS:-300}
venv=${TESSERA_BENCH_VENV:-$HOME/.cache/tessera/bench-venv}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install -y hyperfine)" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "msal>=1.24"
fi
if [ -n "${TESSERA_BIN:-}" ]; then
  bin=$TESSERA_BIN
else
  cargo build --profile release-cli --quiet -p tessera-cli
  bin="$CARGO_TARGET_DIR/release-cli/tessera"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TESSERA_HOME="$work/home"
mkdir -p "$TESSERA_HOME/tokens"
chmod 700 "$TESSERA_HOME/tokens"
# A password provider whose secrets are NOT set: the fast path must not need them.
cat >"$TESSERA_HOME/config.toml" <<TOML
current_context = "dev"
[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "peer"
type = "password"
issuer = "https://idp.example.com"
client_id = "bench-client"
client_secret = "env:BENCH_UNSET_CLIENT_SECRET"
username = "alice"
password = "env:BENCH_UNSET_PASSWORD"
scope = "api:read"
TOML
token="eyJhbGciOiJFZERTQSJ9.$(head -c 600 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=').sig"
now_ms=$(($(date +%s) * 1000))
cat >"$TESSERA_HOME/tokens/tokens.json" <<JSON
{"version":1,"tokens":{"dev/peer":{"access_token":"$token","token_type":"Bearer","expires_at":$((now_ms + 3600000)),"refresh_token":"rt-$token","issued_at":$now_ms,"scope":"api:read"}}}
JSON
chmod 600 "$TESSERA_HOME/tokens/tokens.json"
"$venv/bin/python" benches/token_fast_path/make_msal_cache.py "$work/msal_cache.json" bench-client api:read "$token"

# Both print the same token, without a request.
[ "$("$bin" token)" = "$token" ] || { echo "tessera token printed something else" >&2; exit 1; }
[ "$("$venv/bin/python" benches/token_fast_path/msal_token.py "$work/msal_cache.json" bench-client api:read)" = "$token" ] \
  || { echo "msal_token.py printed something else" >&2; exit 1; }

before=()
if [ -n "${BEFORE_BIN:-}" ]; then
  [ "$("$BEFORE_BIN" token)" = "$token" ] || { echo "$BEFORE_BIN token printed something else" >&2; exit 1; }
  before=(-n "tessera token (BEFORE_BIN)" "$BEFORE_BIN token"
          -n "tessera --version (BEFORE_BIN)" "$BEFORE_BIN --version")
fi

uptime
hyperfine --shell=none --warmup 20 --runs "$runs" --export-json "$work/results.json" \
  "${before[@]}" \
  -n "tessera token" "$bin token" \
  -n "tessera token --format k8s" "$bin token --format k8s" \
  -n "python msal_token.py" "$venv/bin/python benches/token_fast_path/msal_token.py $work/msal_cache.json bench-client api:read" \
  -n "python -c pass (interpreter start)" "$venv/bin/python -c pass" \
  -n "tessera --version (process start + argument parsing)" "$bin --version" \
  -n "/bin/true (process start)" "/bin/true"
# hyperfine's markdown shows means; the goal is a median.
python3 - "$work/results.json" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
true = next(r["median"] for r in results if r["command"].startswith("/bin/true"))
print("| command | median | × `/bin/true` | mean ± σ | min | max |")
print("| --- | --- | --- | --- | --- | --- |")
for r in results:
    ms = lambda s: f"{s * 1000:.2f} ms"
    print(f"| `{r['command']}` | **{ms(r['median'])}** | {r['median'] / true:.2f} | {ms(r['mean'])} ± {ms(r['stddev'])} "
          f"| {ms(r['min'])} | {ms(r['max'])} |")
PY
