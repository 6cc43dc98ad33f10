#!/usr/bin/env bash
# Builds the portable Linux x86_64 wheel of the Python package and checks it:
#   - manylinux2014 (glibc >= 2.17), abi3 (CPython >= 3.9): maturin links with zig (ziglang from
#     PyPI) against glibc 2.17 symbols, whatever this machine's glibc is;
#   - auditwheel (PyPI) must say the wheel is consistent with manylinux_2_17_x86_64;
#   - with --sdist, also the source distribution, and a wheel built from it in a temporary directory.
#   - deflate level 9 (maturin's default is 6): 0.11 MB smaller, the same bytes once installed.
# Idempotent: the tools live in their own venv ($TESSERA_WHEEL_VENV, reused when its pins match),
# the output directory ($OUT, default $CARGO_TARGET_DIR/wheels-portable) is emptied first.
# A release build with fat LTO: ~5-10 min cold on 2 cores, so CI does not run it (docs/python.md).
#
#   scripts/build-wheel.sh            # the wheel; prints its path, size and auditwheel's verdict
#   scripts/build-wheel.sh --sdist    # and the sdist, built into a wheel once to prove it builds
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
venv="${TESSERA_WHEEL_VENV:-$HOME/.cache/tessera/venv-wheel}"
out="${OUT:-$CARGO_TARGET_DIR/wheels-portable}"
pins="maturin==1.16.0 ziglang==0.17.1 auditwheel==6.8.2"

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ]; then
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $pins
  echo "$pins" >"$venv/.pins"
fi
export PATH="$venv/bin:$PATH"

rm -rf "$out"
mkdir -p "$out"
maturin build --release --zig --compatibility manylinux2014 --target x86_64-unknown-linux-gnu --compression-level 9 --out "$out" >&2
wheel=$(ls "$out"/tessera-*.whl)
case "$wheel" in
  *-cp39-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl | *-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl) ;;
  *) echo "unexpected wheel tag: $wheel" >&2; exit 1 ;;
esac
verdict=$(auditwheel show "$wheel")
echo "$verdict" >&2
# auditwheel wraps its lines: compare with the whitespace folded.
tr -s ' \n' '  ' <<<"$verdict" | grep -q 'consistent with the following platform tag: "manylinux_2_17_x86_64"' \
  || { echo "auditwheel does not accept $wheel as manylinux_2_17_x86_64" >&2; exit 1; }
echo "$wheel $(stat -c %s "$wheel") bytes"

if [ "${1:-}" = "--sdist" ]; then
  maturin sdist --out "$out" >&2
  sdist=$(ls "$out"/tessera-*.tar.gz)
  # A user's pip builds the sdist alone, outside the clone: prove it does (maturin from the venv,
  # the Rust dependencies from Cargo.lock in the sdist). A debug build: whether it builds does not
  # depend on the profile, and the shared target directory already holds the debug dependencies.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  tar -xzf "$sdist" -C "$work"
  (cd "$work"/tessera-*/ && maturin build --out "$work/wheel" >&2)
  built=$(ls "$work"/wheel/tessera-*.whl)
  echo "$sdist $(stat -c %s "$sdist") bytes; builds: $(basename "$built")"
fi
