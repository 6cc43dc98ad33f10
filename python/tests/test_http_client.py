"""How token requests travel, from Python: a private CA given only by ``ca_file``, a logging proxy
given by ``proxy`` (with a password that is never shown), ``no_proxy``, ``allow_insecure_http``,
``timeout`` and ``user_agent``; the same keywords on ``ProviderConfig``, ``Client`` and ``SyncClient``;
and the standard environment variables (``HTTPS_PROXY``, ``SSL_CERT_FILE``; ``REQUESTS_CA_BUNDLE`` is
not read), each checked in a child process so that no variable leaks into other tests."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import tessera
from conftest import ALICE, CLIENT_ID, CLIENT_SECRET, Idp, _binary, _Server


# --- a logging forward proxy: CONNECT tunnels and absolute-form requests, every host -> 127.0.0.1 ---


class LoggingProxy:
    """Records ``(method, target, proxy_authorization, user_agent)`` of every request, then forwards
    it to 127.0.0.1 on the port it names (a name like ``idp.test`` never resolves anywhere)."""

    def __init__(self, required_auth: Optional[str] = None) -> None:
        self.required_auth = required_auth
        self.log: List[Tuple[str, str, Optional[str], Optional[str]]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def targets(self) -> List[str]:
        return [f"{method} {target}" for method, target, _, _ in self.log]

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            client.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = client.recv(4096)
                if not chunk or len(data) > 65536:
                    return
                data += chunk
            head, rest = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
            found = {name.lower(): value for name, value in headers}
            self.log.append((method, target, found.get("proxy-authorization"), found.get("user-agent")))
            if self.required_auth is not None and found.get("proxy-authorization") != self.required_auth:
                client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n"
                               b"connection: close\r\n\r\n")
                return
            if method == "CONNECT":
                port = int(target.rsplit(":", 1)[1])
                with socket.create_connection(("127.0.0.1", port), timeout=10) as upstream:
                    client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    upstream.sendall(rest)
                    _pipe(client, upstream)
                return
            authority, _, path = target.removeprefix("http://").partition("/")
            port = int(authority.rsplit(":", 1)[1]) if ":" in authority else 80
            kept = [f"{n}: {v}" for n, v in headers
                    if n.lower() not in ("proxy-authorization", "proxy-connection", "connection", "keep-alive")]
            request = "\r\n".join([f"{method} /{path} {version}", *kept, "connection: close", "", ""])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as upstream:
                upstream.sendall(request.encode("latin-1") + rest)
                _pipe(client, upstream)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    def copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    other = threading.Thread(target=copy, args=(b, a), daemon=True)
    other.start()
    copy(a, b)
    other.join(15)


@pytest.fixture
def proxy() -> Iterator[LoggingProxy]:
    server = LoggingProxy()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A NO_PROXY of the machine running the tests would send loopback past the test proxy."""
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                 "ALL_PROXY", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)


# --- the reference IdP over HTTPS, with a private CA made at its start ---


class TlsIdp:
    def __init__(self, server: _Server, ca_file: Path) -> None:
        self.server = server
        self.issuer = server.first_line
        self.ca_file = ca_file
        self.context = ssl.create_default_context(cafile=str(ca_file))

    def _http(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.issuer + path, method=method)
        with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
            return json.loads(response.read() or b"null")

    def stats(self) -> Dict[str, int]:
        return dict(self._http("GET", "/_test/stats"))

    def reset(self) -> None:
        self._http("POST", "/_test/reset")


@pytest.fixture(scope="module")
def tls_idp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[_Server, Path]]:
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    server = _Server([str(_binary()), "idp", "serve", "--access-ttl", "300", "--test-endpoints",
                      "--tls-ca-out", str(ca_file)])
    yield server, ca_file
    server.stop()


@pytest.fixture
def tls_idp(tls_idp_server: Tuple[_Server, Path]) -> Iterator[TlsIdp]:
    idp = TlsIdp(*tls_idp_server)
    assert idp.issuer.startswith("https://127.0.0.1:"), idp.issuer
    idp.reset()
    yield idp


def alice(issuer: str, **transport: Any) -> tessera.SyncClient:
    return tessera.SyncClient(issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                              grant=tessera.Password(*ALICE), **transport)


# --- tests ---


def test_a_private_ca_given_only_as_ca_file_is_trusted(tls_idp: TlsIdp) -> None:
    with pytest.raises(tessera.TransportError) as refused:
        alice(tls_idp.issuer).authorization_header()
    # Final: no retry meets another certificate, and the message names the fix.
    assert refused.value.transport_kind == "certificate" and not refused.value.transient
    assert "certificate is not trusted" in str(refused.value) and "ca_file" in str(refused.value)
    assert tls_idp.stats()["token_requests"] == 0

    assert alice(tls_idp.issuer, ca_file=tls_idp.ca_file).authorization_header().startswith("Bearer ")
    assert alice(tls_idp.issuer, ca_file=str(tls_idp.ca_file), ca_file_only=True).authorization_header()
    assert tls_idp.stats()["token_requests"] == 2


def test_an_httpx_transport_that_does_not_trust_the_ca_fails_once_with_the_certificate_kind(tls_idp: TlsIdp) -> None:
    import httpx

    attempts: List[str] = []
    with httpx.Client(timeout=10, event_hooks={"request": [lambda request: attempts.append(request.url.path)]}) as http:
        client = tessera.SyncClient(tls_idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                    grant=tessera.Password(*ALICE), transport=http)
        with pytest.raises(tessera.TransportError) as refused:
            client.authorization_header()
    assert refused.value.transport_kind == "certificate" and not refused.value.transient
    assert attempts == ["/.well-known/openid-configuration"], "one attempt, not retried"


async def test_https_goes_through_the_proxy_and_its_password_is_never_shown(tls_idp: TlsIdp) -> None:
    password = "S3cr3t-proxy-pw"
    expected = "Basic " + base64.b64encode(f"me:{password}".encode()).decode()
    proxy = LoggingProxy(required_auth=expected)
    try:
        url = f"http://me:{password}@127.0.0.1:{proxy.port}"
        client = tessera.Client(tls_idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                grant=tessera.Password(*ALICE), ca_file=tls_idp.ca_file, proxy=url)
        assert (await client.authorization_header()).startswith("Bearer ")
        authority = tls_idp.issuer.removeprefix("https://")
        assert proxy.log and all(m == "CONNECT" and t == authority and a == expected for m, t, a, _ in proxy.log)
        assert password not in repr(client)

        wrong = url.replace(password, "Wr0ng-pw")
        provider = tessera.ProviderConfig(
            tessera.ClientAuth.basic(CLIENT_ID, CLIENT_SECRET), tessera.Endpoints.discover(tls_idp.issuer),
            tessera.Password(*ALICE), ca_file=tls_idp.ca_file, proxy=wrong, timeout=5,
        )
        assert "Wr0ng-pw" not in repr(provider) and "me:***@127.0.0.1" in repr(provider)
        with pytest.raises(tessera.TransportError) as refused:
            await tessera.Client(provider=provider).authorization_header()
        assert "Wr0ng-pw" not in str(refused.value) and "Wr0ng-pw" not in repr(refused.value)
        assert tls_idp.stats()["token_requests"] == 1
    finally:
        proxy.close()


def test_client_keywords_replace_the_provider_configs(tls_idp: TlsIdp, proxy: LoggingProxy) -> None:
    provider = tessera.ProviderConfig(
        tessera.ClientAuth.basic(CLIENT_ID, CLIENT_SECRET), tessera.Endpoints.discover(tls_idp.issuer),
        tessera.Password(*ALICE), ca_file=tls_idp.ca_file, proxy=proxy.url,
    )
    tessera.SyncClient(provider=provider).authorization_header()
    assert proxy.targets() and set(proxy.targets()) == {"CONNECT " + tls_idp.issuer.removeprefix("https://")}

    # `no_proxy` on the client: the same provider, directly.
    before = len(proxy.log)
    tessera.SyncClient(provider=provider, no_proxy="127.0.0.1", key="direct").authorization_header()
    assert len(proxy.log) == before
    assert tls_idp.stats()["token_requests"] == 2


def test_allow_insecure_http_lets_a_non_loopback_http_url_through(idp: Idp, proxy: LoggingProxy) -> None:
    port = idp.issuer.rsplit(":", 1)[1]
    endpoint = f"http://idp.test:{port}/token"

    def machine(**transport: Any) -> tessera.SyncClient:
        return tessera.SyncClient(token_endpoint=endpoint, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                  proxy=proxy.url, **transport)

    with pytest.raises(tessera.TransportError) as refused:
        machine().authorization_header()
    assert refused.value.transport_kind == "invalid_url" and "allow_insecure_http" in str(refused.value)
    assert proxy.log == [], "refused before anything was sent"

    machine(allow_insecure_http=True, user_agent="my-app/3.1").authorization_header()
    assert proxy.log == [("POST", endpoint, None, "my-app/3.1")]
    assert idp.stats()["client_credentials_grants"] == 1


def test_bad_transport_keywords_are_configuration_errors_that_quote_no_value(tmp_path: Path) -> None:
    auth = tessera.ClientAuth.basic(CLIENT_ID, CLIENT_SECRET)
    endpoints = tessera.Endpoints.explicit("https://idp.example/token")
    cases: List[Tuple[Dict[str, Any], str]] = [
        ({"ca_file_only": True}, "ca_file_only"),
        ({"proxy": "socks5://me:S3cr3t@proxy:1080"}, "proxy"),
        ({"user_agent": "S3cr3t\r\nx-injected: 1"}, "user_agent"),
        ({"timeout": 0}, "timeout"),
    ]
    for kwargs, field in cases:
        for build in (
            lambda: tessera.ProviderConfig(auth, endpoints, tessera.ClientCredentials(), **kwargs),
            lambda: tessera.SyncClient(token_endpoint="https://idp.example/token", client_id=CLIENT_ID,
                                       client_secret=CLIENT_SECRET, **kwargs),
        ):
            with pytest.raises(tessera.ConfigurationError) as error:
                build()
            assert field in str(error.value) and "S3cr3t" not in str(error.value), (kwargs, str(error.value))

    # A file that is not a bundle: refused when the client is first built, naming the file only.
    garbage = tmp_path / "not-a-bundle.pem"
    garbage.write_text("S3cr3t-not-a-certificate\n")
    client = tessera.SyncClient(token_endpoint="https://127.0.0.1:9/token", client_id=CLIENT_ID,
                                client_secret=CLIENT_SECRET, ca_file=garbage)
    with pytest.raises(tessera.ConfigurationError) as error:
        client.authorization_header()
    assert "ca_file" in str(error.value) and "S3cr3t" not in str(error.value)
    assert "not-a-bundle.pem" not in str(error.value), "a value from the configuration is never quoted"


_CHILD = """
import sys, tessera
client = tessera.SyncClient(sys.argv[1], client_id=sys.argv[2], client_secret=sys.argv[3],
                            grant=tessera.Password(sys.argv[4], sys.argv[5]))
try:
    print("ok" if client.authorization_header().startswith("Bearer ") else "no")
except tessera.TesseraError as error:
    print("error:", error.kind)
"""


def _child(issuer: str, env: Dict[str, str]) -> str:
    scrubbed = {k: v for k, v in os.environ.items()
                if k.lower() not in ("no_proxy", "https_proxy", "http_proxy", "all_proxy", "ssl_cert_file",
                                     "ssl_cert_dir", "requests_ca_bundle")}
    result = subprocess.run([sys.executable, "-c", _CHILD, issuer, CLIENT_ID, CLIENT_SECRET, *ALICE],
                            env={**scrubbed, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_standard_environment_variables(tls_idp: TlsIdp, proxy: LoggingProxy) -> None:
    ca = str(tls_idp.ca_file)
    assert _child(tls_idp.issuer, {"SSL_CERT_FILE": ca}) == "ok"
    assert _child(tls_idp.issuer, {"REQUESTS_CA_BUNDLE": ca}).startswith("error:"), "requests' variable is not read"
    assert _child(tls_idp.issuer, {"SSL_CERT_FILE": ca, "HTTPS_PROXY": proxy.url}) == "ok"
    assert proxy.targets() and all(t.startswith("CONNECT ") for t in proxy.targets())
    before = len(proxy.log)
    assert _child(tls_idp.issuer, {"SSL_CERT_FILE": ca, "HTTPS_PROXY": proxy.url, "NO_PROXY": "127.0.0.1"}) == "ok"
    assert len(proxy.log) == before


def test_a_bad_transport_setting_is_the_same_error_as_from_toml_and_json() -> None:
    from tessera.native import NativeEngine

    expected = "field \"ca_file_only\": needs ca_file (the roots to trust instead of the system's)"
    endpoint = "https://idp.example/token"
    errors = []
    for build in (
        lambda: tessera.SyncClient(token_endpoint=endpoint, client_id="cli", client_secret="s",
                                   ca_file_only=True, key="peer"),
        lambda: tessera.ProviderConfig(tessera.ClientAuth.basic("cli", "s"), tessera.Endpoints.explicit(endpoint),
                                       tessera.ClientCredentials(), ca_file_only=True),
        lambda: NativeEngine().register("peer", {"type": "client_credentials", "token_endpoint": endpoint,
                                                 "client_id": "cli", "client_secret": "s", "ca_file_only": True}),
    ):
        with pytest.raises(tessera.ConfigurationError) as raised:
            build()
        errors.append(str(raised.value))
    assert all(error.endswith(expected) for error in errors), errors


def test_the_http_client_page_example(tls_idp: TlsIdp) -> None:
    """docs/http-client.md's example (python/examples/http_client.py; test_examples.py checks that
    the page includes it verbatim), run against the TLS IdP through a proxy that wants a password."""
    from conftest import ROOT

    expected = "Basic " + base64.b64encode(b"billing:S3cr3t-corp-pw").decode()
    proxy = LoggingProxy(required_auth=expected)
    try:
        env = {
            **os.environ, "TESSERA_ISSUER": tls_idp.issuer, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET,
            "USERNAME": ALICE[0], "PASSWORD": ALICE[1], "CA_FILE": str(tls_idp.ca_file),
            "PROXY_URL": f"http://billing:S3cr3t-corp-pw@127.0.0.1:{proxy.port}",
        }
        done = subprocess.run([sys.executable, str(ROOT / "python" / "examples" / "http_client.py")], env=env,
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "token obtained: True" in done.stdout and "billing:***@127.0.0.1" in done.stdout, done.stdout
        assert "S3cr3t-corp-pw" not in done.stdout + done.stderr
        assert proxy.log and all(m == "CONNECT" and a == expected for m, _, a, _ in proxy.log), proxy.log
        assert tls_idp.stats()["token_requests"] == 1
    finally:
        proxy.close()


def test_every_field_of_every_provider_type_is_a_keyword_of_the_constructors() -> None:
    """The fields that apply to every type (the generated table of docs/configuration.md, from the
    one provider description) are keywords of ProviderConfig, Client and SyncClient, by the same name."""
    from conftest import ROOT

    table = (ROOT / "docs" / "configuration.md").read_text().split("<!-- BEGIN provider fields")[1]
    every_type = [row.split("|")[1].strip().strip("`") for row in table.splitlines()
                  if row.startswith("| `") and row.split("|")[2].strip() == "all"]
    # How the client authenticates: a ClientAuth object (ProviderConfig) or keywords (Client, SyncClient).
    assertion = ["client_assertion_key", "client_assertion_alg", "client_assertion_kid", "client_assertion_certificate"]
    assert [name for name in every_type if name in assertion] == assertion
    for constructor in (tessera.ClientAuth, tessera.Client, tessera.SyncClient):
        signature = constructor.__text_signature__ or ""
        for name in assertion:
            assert f" {name}=" in signature, (constructor.__name__, name)
    # Given as objects (ClientAuth, the grant) or by its own keyword on the clients.
    client = ["type", "client_id", "client_secret", "client_auth", "scope", *assertion]
    transport = [name for name in every_type if name not in client]
    assert transport == [
        "ca_file",
        "ca_file_only",
        "tls_client_certificate",
        "tls_client_key",
        "proxy",
        "no_proxy",
        "timeout",
        "allow_insecure_http",
        "user_agent",
    ]
    for constructor in (tessera.ProviderConfig, tessera.Client, tessera.SyncClient):
        signature = constructor.__text_signature__ or ""
        for name in transport:
            assert f" {name}=" in signature, (constructor.__name__, name)
