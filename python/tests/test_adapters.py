"""httpx (sync and async) and requests adapters against /api/whoami: header injection, and on a
401 exactly one refresh and one retry."""

from __future__ import annotations

import httpx
import pytest
import requests

import tessera
import tessera.httpx
import tessera.requests
from conftest import Idp

UNAUTHORIZED = {"type": "status", "status": 401, "body": "{\"error\":\"invalid_token\"}", "content_type": "application/json"}


async def test_httpx_async_retries_once_after_401(idp: Idp) -> None:
    c = tessera.Client(idp.issuer, **idp.client_kwargs())
    async with httpx.AsyncClient(auth=tessera.httpx.Auth(c)) as http:
        assert (await http.get(idp.url("/api/whoami"))).json()["sub"] == "alice"
        before = await c.authorization_header()
        idp.fault("api", UNAUTHORIZED)
        response = await http.get(idp.url("/api/whoami"))
        assert response.status_code == 200 and response.json()["sub"] == "alice"
        assert await c.authorization_header() != before, "refreshed"
    stats = idp.stats()
    assert (stats["password_grants"], stats["refresh_grants"], stats["api_requests"]) == (1, 1, 3)


def test_httpx_sync_retries_once_after_401(idp: Idp) -> None:
    c = tessera.SyncClient(idp.issuer, **idp.client_kwargs())
    with httpx.Client(auth=tessera.httpx.Auth(c)) as http:
        idp.fault("api", UNAUTHORIZED)
        assert http.get(idp.url("/api/whoami")).json()["sub"] == "alice"
    stats = idp.stats()
    # The first call logs in; its 401 forces one refresh; the retry succeeds.
    assert (stats["password_grants"], stats["refresh_grants"], stats["api_requests"]) == (1, 1, 2)


def test_httpx_gives_up_after_one_retry(idp: Idp) -> None:
    c = tessera.SyncClient(idp.issuer, **idp.client_kwargs())
    with httpx.Client(auth=tessera.httpx.Auth(c.aio)) as http:
        idp.fault("api", UNAUTHORIZED, times=2)
        assert http.get(idp.url("/api/whoami")).status_code == 401
    stats = idp.stats()
    assert (stats["refresh_grants"], stats["api_requests"]) == (1, 2)


def test_requests_retries_once_after_401(idp: Idp) -> None:
    c = tessera.SyncClient(idp.issuer, **idp.client_kwargs())
    with requests.Session() as http:
        http.auth = tessera.requests.Auth(c)
        assert http.get(idp.url("/api/whoami"), timeout=10).json()["sub"] == "alice"
        idp.fault("api", UNAUTHORIZED)
        response = http.get(idp.url("/api/whoami"), timeout=10)
        assert response.status_code == 200 and response.json()["sub"] == "alice"
        assert [r.status_code for r in response.history] == [401]
        idp.fault("api", UNAUTHORIZED, times=2)
        assert http.get(idp.url("/api/whoami"), timeout=10).status_code == 401, "one retry only"
    stats = idp.stats()
    assert (stats["password_grants"], stats["refresh_grants"], stats["api_requests"]) == (1, 2, 5)


def test_adapters_refuse_other_objects() -> None:
    with pytest.raises(TypeError):
        tessera.httpx.Auth(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tessera.requests.Auth("token")  # type: ignore[arg-type]
