#!/usr/bin/env bash
# Runs every test: installs what the tests need (idempotently), then lints and runs the suites.
# Used by CI (.ci/run) and by developers on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Builds are cached outside the clone so that repeated runs on one machine reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "==> third-party servers (interop/)"
command -v node >/dev/null || { echo "node is required for interop tests (oidc-provider)" >&2; exit 1; }
for dir in interop/oidc-provider; do
  stamp="$dir/node_modules/.package-lock.sha256"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
done

echo "==> format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "==> tests"
cargo test --workspace --no-fail-fast 2>&1 | tee "$CARGO_TARGET_DIR/test-output.txt"
status=${PIPESTATUS[0]}

# One closing line that sums every suite above (cargo prints one summary per test binary).
awk '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "%d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$CARGO_TARGET_DIR/test-output.txt"
exit "$status"
