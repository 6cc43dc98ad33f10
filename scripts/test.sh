#!/usr/bin/env bash
# Runs every test: installs what the tests need (idempotently), then lints and runs the suites.
# Used by CI (.ci/run) and by developers on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Builds are cached outside the clone so that repeated runs on one machine reuse them.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tessera/target}"
# Every run rebuilds the workspace's crates (a clone's files are all new), so incremental state is
# only written, never reused: 14 GB of it once filled this machine's disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# This script installs every peer the tests use, so a missing one is a failure, never a skip (the
# Python suite skips only when CI is unset, for a quick `pytest` on a half-set-up laptop).
export CI="${CI:-1}"

echo "==> third-party servers (interop/)"
command -v node >/dev/null || { echo "node is required for interop tests (oidc-provider, cognito-local, browser)" >&2; exit 1; }
# scripts/docs-diagrams: mermaid, to parse the docs' diagrams (below).
for dir in interop/*/ scripts/docs-diagrams/; do
  dir=${dir%/}
  [ -f "$dir/package-lock.json" ] || continue
  stamp="$dir/node_modules/.package-lock.sha256"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
done

# django-oauth-toolkit (interop/django-oauth-toolkit) runs from its own venv there, the path the Rust
# harness looks for (tests/support/django_oauth_toolkit.rs; $TESSERA_DOT_PYTHON overrides it). It is
# made anew whenever requirements.txt changes, before any cargo test needs it.
command -v python3 >/dev/null || { echo "python3 is required for interop tests (django-oauth-toolkit)" >&2; exit 1; }
dot_dir=interop/django-oauth-toolkit
want=$(sha256sum "$dot_dir/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$dot_dir/.venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  python3 -m venv --clear "$dot_dir/.venv"
  "$dot_dir/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$dot_dir/requirements.txt"
  echo "$want" >"$dot_dir/.venv/.requirements.sha256"
fi

# --- Debian packages the tests start or drive: redis-server (issue 4), chromium (browser logins,
# issue 3), keyutils (`keyctl session`: the kernel keyring behind `keyring:` secrets, issue 5), zsh and
# fish (shell completion, issue 16), tmux and man-db (terminal screens and man pages, issue 16), strace
# (the token fast path, issue 19) ---
echo "==> Debian packages"
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v keyctl >/dev/null || missing+=(keyutils)
command -v zsh >/dev/null || missing+=(zsh)    # tests/completions.rs drives zsh and fish (issue 16)
command -v fish >/dev/null || missing+=(fish)
command -v tmux >/dev/null || missing+=(tmux)   # tests/terminal.rs: the screens a person sees (80x24)
command -v man >/dev/null || missing+=(man-db)  # tests/onboarding.rs renders the man pages with man -l
command -v strace >/dev/null || missing+=(strace)  # tests/commands.rs: `tessera token` on a stored token starts no thread
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# --- end Debian packages ---


# --- the build cache keeps what a run uses and nothing else: each change of dependencies or features
# leaves a set of units behind (22 GB in one day, once, which filled the disk). Here every unit's
# fingerprint gets an access time in 1970; cargo reads the fingerprint of every unit it builds or
# finds fresh, which moves the time to now, and cargo-sweep removes, after the tests, the units
# whose time is still in 1970 (in this cache and in the Windows check's). A removed unit that is
# needed again is rebuilt. A run that finds another one using the cache leaves both alone (a lock
# on .test-sh.lock: exclusive to reset and to sweep, shared meanwhile). Where reads do not move
# access times (noatime), a cache over 15 GB is emptied instead. ---
echo "==> build cache"
if [ "$CARGO_INCREMENTAL" = 0 ]; then rm -rf "$CARGO_TARGET_DIR/debug/incremental"; fi
caches=("$CARGO_TARGET_DIR" "$CARGO_TARGET_DIR-windows")
sweep=()
mkdir -p "$CARGO_TARGET_DIR"
exec 9>"$CARGO_TARGET_DIR/.test-sh.lock"
if ! flock -xn 9; then
  echo "another run uses $CARGO_TARGET_DIR: the build cache is left as it is"
elif ! command -v cargo-sweep >/dev/null && ! cargo install cargo-sweep --version 0.8.0 --locked --quiet; then
  echo "cargo-sweep could not be installed (offline?): the build cache will not be trimmed"
else
  probe="$CARGO_TARGET_DIR/.atime-probe"
  echo probe >"$probe" && touch -a -d @86400 "$probe" && cat "$probe" >/dev/null
  if [ "$(stat -c %X "$probe")" -gt 86400 ]; then
    for fingerprints in "${caches[0]}"/*/.fingerprint "${caches[0]}"/*/*/.fingerprint \
                        "${caches[1]}"/*/.fingerprint "${caches[1]}"/*/*/.fingerprint; do
      [ -d "$fingerprints" ] && find "$fingerprints" -type f -exec touch -c -a -d @86400 {} +
    done
    sweep=(--time 1)
  elif [ "$(du -s --block-size=1G "$CARGO_TARGET_DIR" | cut -f1)" -gt 15 ]; then
    echo "access times do not move here (noatime): the build cache is over 15 GB and is emptied"
    cargo clean --quiet
  fi
fi
flock -s 9

echo "==> format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The wheel and the CLI build jsonwebtoken without a crypto provider: tessera signs and verifies with
# ring (docs/DECISIONS.md, "Signatures with ring"). The test builds enable one (the reference IdP's),
# so this is where a dependency that brought it back into the wheel would show.
if cargo tree --quiet -p tessera-py -p tessera-cli -e no-dev,features -i jsonwebtoken | grep -q rust_crypto; then
  echo "jsonwebtoken's rust_crypto provider is in the wheel's or the CLI's build (cargo tree -e no-dev,features -i jsonwebtoken)" >&2
  exit 1
fi

# --- Windows compile check (issue 19): the Windows wheel and CLI of .github/workflows/release.yml
# must keep compiling. A `cargo check` (no codegen, no link) for x86_64-pc-windows-gnu, in its own
# target dir beside the main one; the mingw C compiler is needed by build scripts that compile C for
# the target (ring). Windows behaviour itself is not run anywhere here (no Windows machine). If the
# target or the compiler cannot be installed (no network), one line says the check was not run. ---
echo "==> windows check"
windows_target=x86_64-pc-windows-gnu
windows_skip=""
if ! command -v rustup >/dev/null; then
  windows_skip="rustup is not installed"
elif ! rustup target list --installed | grep -qx "$windows_target" &&
     ! rustup target add "$windows_target" >/dev/null 2>&1; then
  windows_skip="rustup could not add the $windows_target target (offline?)"
fi
if [ -z "$windows_skip" ] && ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! { $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-mingw-w64-x86-64; } \
       >/dev/null 2>&1; then
    windows_skip="apt-get could not install gcc-mingw-w64-x86-64 (offline?)"
  fi
fi
if [ -n "$windows_skip" ]; then
  echo "windows check NOT RUN: $windows_skip"
else
  # Not incremental: the cache stays small (~0.5 GB) and a check recompiles only the workspace crates.
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR-windows" CARGO_INCREMENTAL=0 \
    cargo check --quiet --target "$windows_target" -p tessera -p tessera-py -p tessera-cli
fi
# --- end Windows compile check ---

echo "==> docs diagrams"
node scripts/docs-diagrams/check.mjs docs/*.md README.md

echo "==> tests"
# A failing suite must not stop the script here: the Python suite still runs and the summary is printed.
set +e
cargo test --workspace --no-fail-fast 2>&1 | tee "$CARGO_TARGET_DIR/test-output.txt"
status=${PIPESTATUS[0]}
set -e

# --- Python package (crates/tessera-py + python/): wheel built by maturin into a venv, pytest suite ---
echo "==> python package"
venv="${TESSERA_VENV:-$HOME/.cache/tessera/venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
want=$(sha256sum python/requirements-dev.txt | cut -d' ' -f1)
if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r python/requirements-dev.txt
  echo "$want" >"$venv/.requirements.sha256"
fi
if ! VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop >"$CARGO_TARGET_DIR/maturin.log" 2>&1; then
  cat "$CARGO_TARGET_DIR/maturin.log" >&2
  exit 1
fi
tail -n 1 "$CARGO_TARGET_DIR/maturin.log"
set +e
"$venv/bin/python" -m pytest -q -p no:cacheprovider python/tests 2>&1 |
  tee "$CARGO_TARGET_DIR/pytest-output.txt"
py_status=${PIPESTATUS[0]}
set -e
# pytest exits 5 when it collected no test: that is a failure here too.
if [ "$py_status" -ne 0 ]; then
  echo "pytest failed (exit $py_status)" >&2
  status=1
fi
py_counts=$(tail -n 1 "$CARGO_TARGET_DIR/pytest-output.txt")
py_count() { echo "$py_counts" | grep -oE "[0-9]+ $1" | grep -oE "^[0-9]+" || echo 0; }
py_passed=$(py_count passed); py_failed=$(( $(py_count failed) + $(py_count error) )); py_skipped=$(py_count skipped)
# --- end of the Python package block ---

if [ ${#sweep[@]} -gt 0 ]; then
  echo "==> build cache: the units this run did not use"
  if flock -xn 9; then
    for cache in "${caches[@]}"; do
      [ -d "$cache" ] || continue
      CARGO_TARGET_DIR="$cache" cargo sweep "${sweep[@]}" 2>&1 | tail -n 1 ||
        echo "cargo-sweep failed: $cache was not trimmed"
    done
  else
    echo "another run uses $CARGO_TARGET_DIR: the build cache is left as it is"
  fi
fi

# --- fuzz smoke run (issue 8; docs/fuzzing.md): every cargo-fuzz target for 20 s ---
# cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 unlocks them on the stable toolchain. The fuzz
# crate is outside the workspace and builds in fuzz/target. TESSERA_SKIP_FUZZ=1 skips this block.
if [ "${TESSERA_SKIP_FUZZ:-0}" != 1 ]; then
  echo "==> fuzz smoke run"
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  fuzz_targets=$(cd fuzz && RUSTC_BOOTSTRAP=1 cargo +stable fuzz list)
  for target in $fuzz_targets; do
    mkdir -p "fuzz/corpus/$target"
    if ! (cd fuzz && env -u CARGO_TARGET_DIR RUSTC_BOOTSTRAP=1 cargo +stable fuzz run -O -a "$target" \
            "corpus/$target" "seeds/$target" -- -max_total_time=20 -max_len=4096 2>"corpus/$target.log"); then
      tail -n 40 "fuzz/corpus/$target.log" >&2
      echo "fuzz target $target failed: see fuzz/artifacts/$target" >&2
      status=1
    else
      echo "$target: $(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "fuzz/corpus/$target.log" | tail -n 1)"
    fi
  done
fi
# --- end fuzz smoke run ---

# One closing line that sums every suite above (cargo prints one summary per test binary).
awk -v passed="${py_passed:-0}" -v failed="${py_failed:-0}" -v ignored="${py_skipped:-0}" \
     '/^test result:/ { passed += $4; failed += $6; ignored += $8 }
     END { printf "%d passed, %d failed, %d skipped\n", passed, failed, ignored }' "$CARGO_TARGET_DIR/test-output.txt"
exit "$status"
