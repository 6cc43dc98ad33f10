"""DPoP (RFC 9449) from Python: ``dpop=True`` on ``Client`` / ``SyncClient`` / ``ClientAuth``,
``request_headers``, and the ``tessera.httpx`` / ``tessera.requests`` adapters, against panva's
oidc-provider, which requires DPoP-bound tokens of ``dpop-client``, a nonce in every proof, and a
valid proof (``htm``, ``htu``, ``ath``) at its UserInfo endpoint. The server counts proofs and
``use_dpop_nonce`` answers per route (``GET /_stats``)."""

from __future__ import annotations

import httpx
import pytest
import requests

import tessera
import tessera.httpx
import tessera.requests
from conftest import ALICE, ROOT, OidcProvider

DPOP_CLIENT_ID = "dpop-client"
SCOPE = "openid api:read offline_access"


def userinfo(op: OidcProvider) -> str:
    return op.issuer + "/me"


def sync_client(op: OidcProvider, **dpop: object) -> tessera.SyncClient:
    return tessera.SyncClient(
        op.issuer, client_id=DPOP_CLIENT_ID, grant=tessera.Password(*ALICE), scope=SCOPE, dpop=True, **dpop
    )


def test_sync_client_gets_a_bound_token_and_request_headers_carry_a_proof(oidc_provider: OidcProvider) -> None:
    client = sync_client(oidc_provider)
    assert client.uses_dpop
    assert client.authorization_header().startswith("DPoP ")
    stats = oidc_provider.stats()
    assert stats["dpop_nonce_demands"] == {"token": 1}, stats  # retried once with the server's nonce
    headers = client.request_headers("GET", userinfo(oidc_provider) + "?x=1")
    assert set(headers) == {"Authorization", "DPoP"} and headers["DPoP"].count(".") == 2
    # As a bearer token, the bound token is refused.
    bearer = "Bearer " + client.access_token()
    assert requests.get(userinfo(oidc_provider), headers={"Authorization": bearer}).status_code == 401
    assert "DPoP" not in repr(client) and headers["DPoP"] not in repr(client)


def test_requests_adapter_sends_a_proof_per_request_and_answers_the_nonce_challenge(oidc_provider: OidcProvider) -> None:
    client = sync_client(oidc_provider)
    client.tokens()
    oidc_provider.reset()
    with requests.Session() as session:
        session.auth = tessera.requests.Auth(client)
        for _ in range(3):
            response = session.get(userinfo(oidc_provider))
            assert response.status_code == 200, response.text
            assert response.json()["sub"] == "alice"
    stats = oidc_provider.stats()
    assert stats["dpop_nonce_demands"] == {"userinfo": 1}, stats
    assert stats["dpop_proofs"] == {"userinfo": 4}, stats
    assert stats["token_requests"] == 0, stats


def test_httpx_adapter_sync_and_async_and_refresh_with_rotation(oidc_provider: OidcProvider) -> None:
    client = sync_client(oidc_provider)
    first = client.tokens()
    with httpx.Client(auth=tessera.httpx.Auth(client)) as http:
        response = http.get(userinfo(oidc_provider))
        assert response.status_code == 200, response.text
    # Refresh of the DPoP-bound token (public client: the refresh token is bound too), rotated.
    oidc_provider.reset()
    assert client.force_refresh().startswith("DPoP ")
    renewed = client.tokens()
    assert renewed.refresh_token != first.refresh_token and renewed.access_token != first.access_token
    stats = oidc_provider.stats()
    # The login's answer gave the next nonce: the refresh carries it and meets no use_dpop_nonce.
    assert stats["by_grant_type"]["refresh_token"] == 1 and "token" not in stats["dpop_nonce_demands"], stats
    assert (stats["refresh_token_reuses"], stats["grants_revoked"]) == (0, 0), stats

    async def call() -> int:
        async with httpx.AsyncClient(auth=tessera.httpx.Auth(client.aio)) as http:
            return (await http.get(userinfo(oidc_provider))).status_code

    import asyncio

    assert asyncio.run(call()) == 200


def test_client_auth_and_the_provider_description_take_the_same_names(oidc_provider: OidcProvider) -> None:
    key = (ROOT / "testdata" / "client-assertion" / "ec.pem").read_text()
    auth = tessera.ClientAuth(DPOP_CLIENT_ID, dpop=True, dpop_key=key)
    provider = tessera.ProviderConfig(
        auth, tessera.Endpoints.discover(oidc_provider.issuer), tessera.Password(*ALICE), scope=SCOPE
    )
    client = tessera.SyncClient(provider=provider)
    assert client.authorization_header().startswith("DPoP ")
    assert key.splitlines()[1] not in repr(auth) + repr(provider) + repr(client)
    with pytest.raises(tessera.ConfigurationError, match="dpop_key") as caught:
        tessera.ClientAuth(DPOP_CLIENT_ID, dpop_key=key)
    assert key.splitlines()[1] not in str(caught.value)
    with pytest.raises(tessera.ConfigurationError, match="dpop_alg"):
        tessera.SyncClient(
            oidc_provider.issuer, client_id=DPOP_CLIENT_ID, grant=tessera.Password(*ALICE), dpop=True, dpop_alg="HS256"
        ).tokens()


def test_keys_and_proofs_never_reach_the_logs(oidc_provider: OidcProvider, caplog: pytest.LogCaptureFixture) -> None:
    import json
    import logging

    caplog.set_level(logging.DEBUG, logger="tessera")
    store = tessera.MemoryStore()
    client = tessera.SyncClient(
        oidc_provider.issuer,
        client_id=DPOP_CLIENT_ID,
        grant=tessera.Password(*ALICE),
        scope=SCOPE,
        dpop=True,
        store=store,
        key="dpop",
    )
    with requests.Session() as session:
        session.auth = tessera.requests.Auth(client)
        assert session.get(userinfo(oidc_provider)).status_code == 200
        proof = client.request_headers("GET", userinfo(oidc_provider))["DPoP"]
    client.force_refresh()
    stored = store.load("dpop")
    assert stored is not None
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert any(r.name == "tessera" for r in caplog.records), "debug logging was on"
    # The proofs (and their signatures) and the generated key's private scalar appear nowhere.
    assert proof not in logged and proof.split(".")[2] not in logged
    assert client.access_token() not in logged
    # A private JWK (the stored generated key) would show its "d" member.
    for text in (repr(client), repr(stored), logged):
        assert '"d":' not in text and "BEGIN" not in text, text[:200]
    # The header of a proof names the public key only.
    header = json.loads(__import__("base64").urlsafe_b64decode(proof.split(".")[0] + "==="))
    assert header["typ"] == "dpop+jwt" and "d" not in header["jwk"]


def test_the_sans_io_engine_proves_token_requests_and_hands_the_key_to_the_host(oidc_provider: OidcProvider) -> None:
    from tessera.native import NativeEngine
    from test_native import drive

    description = {
        "type": "password",
        "issuer": oidc_provider.issuer,
        "client_id": DPOP_CLIENT_ID,
        "username": ALICE[0],
        "password": ALICE[1],
        "scope": SCOPE,
        "dpop": True,
    }
    engine = NativeEngine()
    engine.register("api", description)
    done = drive(engine, engine.ensure("api"))
    assert done["type"] == "done" and done["tokens"]["token_type"] == "DPoP", done
    key = done["tokens"]["dpop_key"]  # the host stores it with the tokens
    assert '"d":' in key
    # Another engine (another process) given those tokens refreshes with that key.
    other = NativeEngine()
    other.register("api", description)
    other.set_tokens("api", done["tokens"])
    renewed = drive(other, other.refresh("api"))
    assert renewed["type"] == "done" and renewed["tokens"]["dpop_key"] == key, renewed
    assert oidc_provider.stats()["refresh_token_reuses"] == 0


@pytest.fixture
def downgrading_server():
    """A loopback token endpoint that issues a DPoP-bound token at login and a Bearer one at refresh
    (RFC 9449 §5: a server may answer ``token_type=Bearer``), and an API that refuses the first
    token: the headers of each API request are recorded."""
    import json as _json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen: list = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            if "grant_type=refresh_token" in body:
                answer = {"access_token": "second", "token_type": "Bearer", "expires_in": 3600}
            else:
                answer = {"access_token": "first", "token_type": "DPoP", "expires_in": 3600, "refresh_token": "r"}
            self._send(200, _json.dumps(answer).encode(), {"content-type": "application/json"})

        def do_GET(self) -> None:  # noqa: N802
            seen.append({name.lower(): value for name, value in self.headers.items()})
            if self.headers.get("authorization") == "DPoP first":
                self._send(401, b"", {"www-authenticate": 'DPoP error="invalid_token"'})
            else:
                self._send(200, b"ok", {"content-type": "text/plain"})

        def _send(self, status: int, body: bytes, headers: dict) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


@pytest.mark.parametrize("adapter", ["requests", "httpx"])
def test_a_retry_with_a_bearer_token_carries_no_stale_proof(downgrading_server, adapter: str) -> None:
    base, seen = downgrading_server
    client = tessera.SyncClient(
        token_endpoint=base + "/token",
        client_id="c",
        grant=tessera.Password(*ALICE),
        scope="api",
        dpop=True,
    )
    if adapter == "requests":
        with requests.Session() as session:
            session.auth = tessera.requests.Auth(client)
            assert session.get(base + "/api").status_code == 200
    else:
        with httpx.Client(auth=tessera.httpx.Auth(client)) as session:
            assert session.get(base + "/api").status_code == 200
    first, retry = seen
    assert first["authorization"] == "DPoP first" and "dpop" in first
    assert retry["authorization"] == "Bearer second"
    assert "dpop" not in retry, "the proof of the DPoP token must not ride along with a Bearer token"
