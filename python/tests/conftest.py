"""Fixtures: the reference IdP binary (`tessera idp serve --test-endpoints`) and panva's
oidc-provider (interop/oidc-provider), each on an ephemeral loopback port, stopped after use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]

ALICE = ("alice", "alice-password")
BOB = ("bob", "bob-password")
BOB_TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CLIENT_ID = "confidential-client"
CLIENT_SECRET = "confidential-secret"
SECRETS = ["alice-password", "bob-password", BOB_TOTP_SECRET, CLIENT_SECRET]

START_TIMEOUT_S = 30


def _http(method: str, url: str, body: Optional[Dict[str, Any]] = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _binary() -> Path:
    explicit = os.environ.get("TESSERA_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "debug" / "tessera"
    if not binary.exists():
        subprocess.run(["cargo", "build", "--quiet", "-p", "tessera-cli"], cwd=ROOT, check=True, timeout=900)
    return binary


class _Server:
    """A server process whose first stdout line says where it listens."""

    def __init__(self, argv: list, env: Optional[Dict[str, str]] = None, cwd: Optional[Path] = None) -> None:
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        line: list = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not line or not line[0].strip():
            self.stop()
            raise RuntimeError(f"{argv[0]} did not print its address within {START_TIMEOUT_S} s")
        self.first_line = line[0].strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


class Idp:
    """The reference IdP and its /_test control endpoints."""

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.issuer = server.first_line

    def url(self, path: str) -> str:
        return self.issuer + path

    def stats(self) -> Dict[str, int]:
        return dict(_http("GET", self.url("/_test/stats")))

    def fault(self, endpoint: str, kind: Dict[str, Any], times: int = 1, delay_ms: int = 0) -> None:
        _http("POST", self.url("/_test/faults"), {"endpoint": endpoint, "kind": kind, "times": times, "delay_ms": delay_ms})

    def access_token_ttl(self, seconds: int) -> None:
        _http("POST", self.url("/_test/access_token_ttl"), {"seconds": seconds})

    def reset(self) -> None:
        _http("POST", self.url("/_test/reset"))

    def client_kwargs(self, **overrides: Any) -> Dict[str, Any]:
        import tessera

        kwargs: Dict[str, Any] = {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "grant": tessera.Password(*ALICE),
        }
        kwargs.update(overrides)
        return kwargs


@pytest.fixture(scope="session")
def idp_server() -> Iterator[_Server]:
    server = _Server([str(_binary()), "idp", "serve", "--access-ttl", "300", "--test-endpoints"])
    yield server
    server.stop()


@pytest.fixture
def idp(idp_server: _Server) -> Iterator[Idp]:
    server = Idp(idp_server)
    server.reset()
    yield server
    server.reset()


class OidcProvider:
    def __init__(self, server: _Server) -> None:
        self.server = server
        self.issuer = json.loads(server.first_line)["issuer"]

    def stats(self) -> Dict[str, Any]:
        return dict(_http("GET", self.issuer + "/_stats"))

    def reset(self) -> None:
        _http("POST", self.issuer + "/_stats/reset")


@pytest.fixture(scope="session")
def oidc_provider_server() -> Iterator[_Server]:
    directory = ROOT / "interop" / "oidc-provider"
    node = os.environ.get("NODE") or shutil.which("node")
    if node is None or not (directory / "node_modules").is_dir():
        if os.environ.get("CI"):
            pytest.fail("oidc-provider interop needs node and `npm ci` in interop/oidc-provider")
        pytest.skip("node or interop/oidc-provider/node_modules missing")
    server = _Server([node, "server.mjs"], env={"ACCESS_TTL": "60", "EXIT_ON_STDIN_CLOSE": "1"}, cwd=directory)
    yield server
    server.stop()


@pytest.fixture
def oidc_provider(oidc_provider_server: _Server) -> Iterator[OidcProvider]:
    server = OidcProvider(oidc_provider_server)
    server.reset()
    yield server
