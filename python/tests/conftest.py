"""Fixtures: the reference IdP binary (`tessera idp serve --test-endpoints`, which runs `tessera-idp`) and panva's
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
    # `tessera idp serve` runs the separate `tessera-idp` program found beside `tessera`.
    if not binary.exists() or not (target / "debug" / "tessera-idp").exists():
        subprocess.run(["cargo", "build", "--quiet", "-p", "tessera-cli", "-p", "tessera-idp"], cwd=ROOT, check=True,
                       timeout=900)
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

    def outbox(self, to: str) -> list:
        """The one-time-code emails sent to ``to``, oldest first."""
        from urllib.parse import quote

        return list(_http("GET", self.url("/_test/outbox?to=" + quote(to))))

    def last_code(self, to: str) -> str:
        messages = self.outbox(to)
        assert messages, f"no code was mailed to {to}"
        return str(messages[-1]["code"])

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
        ready = json.loads(server.first_line)
        self.issuer = ready["issuer"]
        # The HTTPS listener that asks for TLS client certificates (RFC 8705; testdata/mtls/).
        self.mtls_base = ready["mtls_base"]
        self.verification_uri = self.issuer + "/device"

    def grant_type(self, grant_type: str) -> int:
        return int(self.stats().get("by_grant_type", {}).get(grant_type, 0))

    def stats(self) -> Dict[str, Any]:
        return dict(_http("GET", self.issuer + "/_stats"))

    def reset(self) -> None:
        _http("POST", self.issuer + "/_stats/reset")

    def introspect(self, token: str) -> Dict[str, Any]:
        """RFC 7662 introspection of ``token`` by the confidential client (``client_secret_basic``)."""
        import base64
        import urllib.parse
        import urllib.request

        basic = base64.b64encode(b"confidential-client:confidential-secret").decode()
        request = urllib.request.Request(
            self.issuer + "/token/introspection",
            data=urllib.parse.urlencode({"token": token}).encode(),
            headers={"authorization": f"Basic {basic}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))


@pytest.fixture(scope="session")
def oidc_provider_server() -> Iterator[_Server]:
    directory = ROOT / "interop" / "oidc-provider"
    node = os.environ.get("NODE") or shutil.which("node")
    if node is None or not (directory / "node_modules").is_dir():
        if os.environ.get("CI"):
            pytest.fail("oidc-provider interop needs node and `npm ci` in interop/oidc-provider")
        pytest.skip("node or interop/oidc-provider/node_modules missing")
    # DEVICE_INTERVAL=1: device-code clients poll every second (oidc-provider's default is 5 s).
    env = {"ACCESS_TTL": "60", "EXIT_ON_STDIN_CLOSE": "1", "DEVICE_INTERVAL": "1"}
    server = _Server([node, "server.mjs"], env=env, cwd=directory)
    yield server
    server.stop()


@pytest.fixture
def oidc_provider(oidc_provider_server: _Server) -> Iterator[OidcProvider]:
    server = OidcProvider(oidc_provider_server)
    server.reset()
    yield server


class Redis:
    """A redis-server on a free loopback port, without persistence (`--save ''`)."""

    def __init__(self, port: int, process: "subprocess.Popen[bytes]") -> None:
        self.port = port
        self.process = process
        self.url = f"redis://127.0.0.1:{port}/0"

    def command(self, *args: str) -> str:
        """One command over RESP, answered as text (for assertions on raw keys)."""
        import socket

        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
            connection.sendall(payload.encode())
            return connection.recv(65536).decode(errors="replace")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Redis]:
    import socket
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("the Redis tests need redis-server (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"redis-server did not listen on {port} within {START_TIMEOUT_S} s")
            time.sleep(0.05)
    yield Redis(port, process)
    process.terminate()
    process.wait(10)


@pytest.fixture
def redis(redis_server: Redis) -> Redis:
    redis_server.command("FLUSHALL")
    return redis_server


def no_key_material(text: str, *keys: str) -> None:
    """Asserts that `text` holds no line of a PEM key in `keys` and no JWT (an assertion)."""
    for pem in keys:
        for line in pem.splitlines():
            if line and not line.startswith("-----"):
                assert line not in text, "key material in the error"
    assert "eyJ" not in text, "an assertion in the error"
