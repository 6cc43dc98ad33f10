#!/usr/bin/env bash
# The CLI on hostile local files (issue 14: "typed error, under 50 MB RSS, under 1 s"): wall time
# (hyperfine) and peak RSS (GNU time, the largest of 5 runs) per case, next to the same commands on
# good files and to `cat` / Python reading the good files (the peers: any program's floor for
# reading such a file). The hostile cases are never given to a peer: `cat /dev/zero` and
# `tomllib.load` of a FIFO do not end. Not part of CI; needs hyperfine and /usr/bin/time (GNU).
#
#   benches/hostile_files/run.sh            # builds the CLI (profile release-cli), prints a markdown table
#   RUNS=200 benches/hostile_files/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
runs=${RUNS:-100}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

command -v hyperfine >/dev/null || { echo "needs hyperfine (apt-get install -y hyperfine)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install -y time)" >&2; exit 1; }
cargo build --profile release-cli --quiet -p tessera-cli
bin="$CARGO_TARGET_DIR/release-cli/tessera"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A client_credentials provider whose endpoint is never reached (every case fails before, or is
# served from the store).
config_text='current_context = "dev"
[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "peer"
type = "client_credentials"
token_endpoint = "http://127.0.0.1:9/token"
client_id = "bench-client"
client_secret = "bench-secret"'
now_ms=$(($(date +%s) * 1000))
tokens_text="{\"version\":1,\"tokens\":{\"dev/peer\":{\"access_token\":\"at-$(head -c 600 /dev/urandom | base64 -w0)\",\"token_type\":\"Bearer\",\"expires_at\":$((now_ms + 3600000)),\"issued_at\":$now_ms}}}"

# One TESSERA_HOME per case: good config and tokens, then one file replaced.
home() {
  local dir="$work/$1"
  mkdir -p "$dir/tokens"
  chmod 700 "$dir/tokens"
  printf '%s\n' "$config_text" >"$dir/config.toml"
  printf '%s\n' "$tokens_text" >"$dir/tokens/tokens.json"
  chmod 600 "$dir/config.toml" "$dir/tokens/tokens.json"
  echo "$dir"
}
hostile() { # hostile KIND PATH
  rm -f "$2"
  case "$1" in
    dev_zero) ln -s /dev/zero "$2" ;;
    fifo) mkfifo "$2" ;;
    200mb) truncate -s 200M "$2"; chmod 600 "$2" ;;
    world_writable) printf '%s\n' "$config_text" >"$2"; chmod 666 "$2" ;;
    other_owner) printf '%s\n' "$config_text" >"$2"; chmod 600 "$2"; chown 65534 "$2" ;;
  esac
}
kinds=(dev_zero fifo 200mb world_writable)
[ "$(id -u)" = 0 ] && kinds+=(other_owner)

names=() commands=() homes=()
add() { names+=("$1"); homes+=("$2"); commands+=("$3"); }
good=$(home good)
add "good files: tessera token (valid stored token)" "$good" "$bin token"
add "good files: tessera config view" "$good" "$bin config view"
for kind in "${kinds[@]}"; do
  dir=$(home "tokens-$kind")
  hostile "$kind" "$dir/tokens/tokens.json"
  add "tokens.json $kind: tessera token" "$dir" "$bin token"
done
for kind in "${kinds[@]}"; do
  dir=$(home "config-$kind")
  hostile "$kind" "$dir/config.toml"
  add "config.toml $kind: tessera token" "$dir" "$bin token"
  add "config.toml $kind: tessera config view" "$dir" "$bin config view"
done
for kind in dev_zero fifo 200mb world_writable; do
  dir=$(home "secret-$kind")
  sed -i "s|client_secret = \"bench-secret\"|client_secret = \"file:$dir/secret\"|" "$dir/config.toml"
  rm "$dir/tokens/tokens.json"
  hostile "$kind" "$dir/secret"
  add "file: secret $kind: tessera token" "$dir" "$bin token"
done
dir=$(home lock)
mkdir -p "$dir/tokens/locks" && chmod 700 "$dir/tokens/locks"
ln -s "$dir/created-through-the-link" "$dir/tokens/locks/dev%2Fpeer.lock"
add "dangling locks/dev%2Fpeer.lock: tessera refresh --force" "$dir" "$bin refresh --force"
add "peer: cat config.toml (good)" "$good" "cat $good/config.toml"
add "peer: python3 tomllib.load(config.toml) (good)" "$good" \
  "python3 -c \"import tomllib,sys; tomllib.load(open(sys.argv[1],'rb'))\" $good/config.toml"
add "peer: python3 json.load(tokens.json) (good)" "$good" \
  "python3 -c \"import json,sys; json.load(open(sys.argv[1]))\" $good/tokens/tokens.json"
add "/bin/true (process start)" "$good" "/bin/true"

echo "| case | exit | median | max | peak RSS (max of 5) |"
echo "| --- | --- | --- | --- | --- |"
for i in "${!names[@]}"; do
  export TESSERA_HOME="${homes[$i]}"
  # The command line in shell syntax (hyperfine splits it the same way).
  eval "argv=(${commands[$i]})"
  status=0
  timeout 10 "${argv[@]}" >/dev/null 2>"$work/stderr" || status=$?
  [ "$status" != 124 ] || { echo "${names[$i]}: still running after 10 s" >&2; exit 1; }
  rss=0
  for _ in 1 2 3 4 5; do
    /usr/bin/time -o "$work/rss" -f %M "${argv[@]}" >/dev/null 2>&1 || true
    kb=$(tail -n 1 "$work/rss"); [ "$kb" -gt "$rss" ] && rss=$kb
  done
  hyperfine --shell=none --ignore-failure --warmup 5 --runs "$runs" --export-json "$work/h.json" \
    -n "${names[$i]}" "${commands[$i]}" >/dev/null
  python3 - "$work/h.json" "${names[$i]}" "$status" "$rss" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
ms = lambda s: f"{s * 1000:.2f} ms"
print(f"| {sys.argv[2]} | {sys.argv[3]} | **{ms(r['median'])}** | {ms(r['max'])} | {int(sys.argv[4]) / 1024:.1f} MB |")
PY
  if [ "$status" != 0 ] && [[ "${names[$i]}" != peer* ]]; then
    sed 's/^/    /' "$work/stderr" | head -n 2 >&2
  fi
done
