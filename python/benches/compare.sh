#!/usr/bin/env bash
# tessera vs msal, google-auth, httpx-auth and authlib in one run (python/benches/compare.py).
# Builds the release wheel, installs it with the peers (python/benches/requirements-compare.txt)
# into their own venv ($TESSERA_COMPARE_VENV, default ~/.cache/tessera/venv-compare), builds the
# `tessera` and `tessera-idp` binaries for the reference IdP, and prints the tables recorded in benches/README.md.
# Loopback only; ~5 min cold (release build), ~1 min warm.
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
venv="${TESSERA_COMPARE_VENV:-$HOME/.cache/tessera/venv-compare}"
wheels="$target/wheels-compare"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r python/benches/requirements-compare.txt maturin==1.16.0
rm -rf "$wheels"
"$venv/bin/maturin" build --release --quiet --out "$wheels"
wheel=$(ls "$wheels"/tessera-*.whl)
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$wheel"
cargo build --quiet -p tessera-cli -p tessera-idp  # `tessera idp serve` runs tessera-idp
TESSERA_BIN="$target/debug/tessera" TESSERA_WHEEL="$wheel" "$venv/bin/python" python/benches/compare.py
