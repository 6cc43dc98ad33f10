"""The packaging checks that are cheap enough for every CI run.

The portable wheel itself (manylinux2014 through zig, a fat-LTO release build of several minutes)
is built and checked by ``scripts/build-wheel.sh``, which CI does not run (docs/python.md,
"Installing"). Here: the source distribution holds what a ``pip install`` from it needs, and
nothing of the test suite; and the build configuration still asks for the abi3 wheel that script
tags ``cp39-abi3``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _maturin() -> str:
    found = shutil.which("maturin") or str(Path(sys.executable).parent / "maturin")
    if not Path(found).exists():
        pytest.fail("maturin is not installed (python/requirements-dev.txt)")
    return found


def test_the_sdist_holds_the_sources_a_build_needs_and_no_tests(tmp_path: Path) -> None:
    done = subprocess.run([_maturin(), "sdist", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (sdist,) = tmp_path.glob("tessera-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        pkg_info = archive.extractfile(next(m for m in archive.getmembers() if m.name.endswith("/PKG-INFO")))
        assert pkg_info is not None
        metadata = pkg_info.read().decode()
    for needed in ["pyproject.toml", "Cargo.toml", "Cargo.lock", "crates/tessera-py/Cargo.toml",
                   "crates/tessera-py/src/lib.rs", "crates/tessera-py-bindings/src/lib.rs", "crates/tessera/src/lib.rs", "crates/tessera-core/src/lib.rs",
                   "python/tessera/__init__.py", "python/tessera/_tessera.pyi", "python/tessera/py.typed"]:
        assert needed in names, f"{needed} missing from {sdist.name}"
    assert not any(name.startswith("python/tests/") for name in names), "the test suite is not shipped"
    assert "Requires-Python: >=3.9" in metadata, metadata


def test_the_extension_is_built_for_the_stable_abi_from_python_3_9() -> None:
    # abi3-py39 is what makes one wheel per platform serve CPython 3.9 and every later version: the
    # tag scripts/build-wheel.sh checks (cp39-abi3). A build without it would need a wheel per version.
    cargo = (ROOT / "Cargo.toml").read_text()
    assert 'pyo3 = { version = "0.30.1", features = ["abi3-py39"] }' in cargo
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.9"' in pyproject
