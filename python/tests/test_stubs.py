"""The .pyi stubs match the runtime (mypy.stubtest), and the package type-checks with them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=PYTHON_DIR, capture_output=True, text=True, timeout=300
    )


def test_stubs_match_the_runtime() -> None:
    result = run("mypy.stubtest", "tessera", "--mypy-config-file", str(PYTHON_DIR / "mypy.ini"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_and_examples_type_check_strictly() -> None:
    result = run("mypy", "--config-file", "mypy.ini", "tessera", "tests/typing_examples.py")
    assert result.returncode == 0, result.stdout + result.stderr
