"""``transport=``: the caller's own HTTP stack (an httpx.Client, an httpx.AsyncClient, or a callable)
sends the Rust engine's requests, while single flight, stores and policies stay in Rust. Against the
reference IdP; faults come from an httpx.MockTransport in front of a real client."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Callable, List, Optional, Tuple

import httpx
import pytest

import tessera
from tessera._transport import _kind

from conftest import ALICE, CLIENT_ID, CLIENT_SECRET, SECRETS, Idp

Seen = List[Tuple[str, str]]


def hooked(seen: Seen) -> httpx.Client:
    """A client whose event hook records every request (what a user's logging or tracing hook sees)."""

    def log(request: httpx.Request) -> None:
        seen.append((request.method, request.url.path))

    return httpx.Client(timeout=10, event_hooks={"request": [log]})


def token_posts(seen: Seen) -> int:
    return sum(1 for method, path in seen if method == "POST" and path.endswith("/token"))


def expired_with_refresh_token(idp: Idp, store: tessera.MemoryStore, key: str = "default") -> str:
    """Stores alice's real refresh token beside an expired access token; returns the refresh token."""
    tokens = tessera.SyncClient(idp.issuer, key="seed", **idp.client_kwargs()).login()
    assert tokens.refresh_token
    past = datetime.now(timezone.utc) - timedelta(seconds=5)
    store.save(key, tessera.TokenSet(tokens.access_token, expires_at=past, refresh_token=tokens.refresh_token))
    return tokens.refresh_token


def test_an_httpx_client_with_an_event_hook_sees_every_token_request(idp: Idp) -> None:
    seen: Seen = []
    with hooked(seen) as http:
        client = tessera.SyncClient(idp.issuer, transport=http, **idp.client_kwargs())
        header = client.authorization_header()
        assert client.authorization_header() == header, "cached: nothing sent"
        client.force_refresh()
        assert client.logout().revoked
    assert seen[0] == ("GET", "/.well-known/openid-configuration")
    assert token_posts(seen) == 2 == idp.stats()["token_requests"], seen
    assert seen[-1] == ("POST", "/revoke") and len(seen) == 4, seen
    # The key API, built from the client, sends the same way.
    with hooked(seen) as http:
        client = tessera.SyncClient(idp.issuer, transport=http, **idp.client_kwargs(scope="openid api:read"))
        key, _ = tessera.SyncApiKeys(client, idp.issuer).create("via-transport", expires_in_days=1)
    assert ("POST", "/api/keys") in seen and key.name == "via-transport", seen


def test_the_async_client_takes_an_httpx_async_client(idp: Idp) -> None:
    seen: Seen = []

    async def main() -> None:
        async def log(request: httpx.Request) -> None:
            seen.append((request.method, request.url.path))

        async with httpx.AsyncClient(timeout=10, event_hooks={"request": [log]}) as http:
            async with tessera.Client(idp.issuer, transport=http, **idp.client_kwargs()) as client:
                assert (await client.authorization_header()).startswith("Bearer ")
                await client.force_refresh()

    asyncio.run(main())
    assert token_posts(seen) == 2 == idp.stats()["token_requests"], seen
    with pytest.raises(tessera.ConfigurationError, match="AsyncClient needs the async"):
        tessera.SyncClient(idp.issuer, transport=httpx.AsyncClient(), **idp.client_kwargs())


def test_100_concurrent_async_callers_on_an_expired_token_make_one_request(idp: Idp) -> None:
    store = tessera.MemoryStore()
    refresh_token = expired_with_refresh_token(idp, store)
    before = idp.stats()
    seen: Seen = []

    async def main() -> List[str]:
        async def log(request: httpx.Request) -> None:
            seen.append((request.method, request.url.path))

        async with httpx.AsyncClient(timeout=10, event_hooks={"request": [log]}) as http:
            client = tessera.Client(idp.issuer, store=store, transport=http, **idp.client_kwargs())
            return list(await asyncio.gather(*(client.authorization_header() for _ in range(100))))

    headers = asyncio.run(main())
    assert len(set(headers)) == 1 and headers[0].startswith("Bearer ")
    assert token_posts(seen) == 1, seen
    after = idp.stats()
    assert (after["refresh_grants"] - before["refresh_grants"], after["password_grants"] - before["password_grants"]) == (1, 0)
    stored = store.load("default")
    assert stored is not None and stored.refresh_token != refresh_token, "the rotated token was saved"


def test_100_concurrent_threads_on_an_expired_token_make_one_request(idp: Idp) -> None:
    store = tessera.MemoryStore()
    expired_with_refresh_token(idp, store)
    before = idp.stats()["refresh_grants"]
    seen: Seen = []
    headers: List[str] = []
    with hooked(seen) as http:
        client = tessera.SyncClient(idp.issuer, store=store, transport=http, **idp.client_kwargs())
        start = threading.Barrier(100)

        def call() -> None:
            start.wait()
            headers.append(client.authorization_header())

        threads = [threading.Thread(target=call) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert len(headers) == 100 and len(set(headers)) == 1
    assert token_posts(seen) == 1 and idp.stats()["refresh_grants"] == before + 1, seen


@pytest.mark.parametrize(
    "error, kind",
    [
        (httpx.ConnectError, "connect"),
        (httpx.ConnectTimeout, "connect"),
        (httpx.PoolTimeout, "connect"),
        (httpx.ReadTimeout, "timeout"),
        (httpx.WriteTimeout, "timeout"),
        (httpx.ReadError, "connection_closed"),
        (httpx.WriteError, "connection_closed"),
        (httpx.RemoteProtocolError, "connection_closed"),
        (httpx.ProxyError, "connection_closed"),
        (httpx.UnsupportedProtocol, "invalid_url"),
    ],
)
def test_httpx_exceptions_map_by_the_phase_they_happen_in(error: type, kind: str) -> None:
    assert _kind(error("boom")) == kind
    assert _kind(ValueError("not httpx")) is None


class Faulty:
    """An httpx.MockTransport in front of the real IdP that fails the n-th refresh: before sending
    it (``raise_before``) or after the server processed it (``raise_after``)."""

    def __init__(self, raise_before: Optional[type] = None, raise_after: Optional[type] = None) -> None:
        self.upstream = httpx.Client(timeout=10)
        self.raise_before, self.raise_after = raise_before, raise_after
        self.bodies: List[str] = []
        self.client = httpx.Client(transport=httpx.MockTransport(self.handle), timeout=10)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = request.content.decode()
        self.bodies.append(body)
        refresh = "grant_type=refresh_token" in body
        if refresh and self.raise_before is not None:
            error, self.raise_before = self.raise_before, None
            raise error("injected before sending", request=request)
        forwarded = self.upstream.request(request.method, request.url, headers=request.headers, content=request.content)
        if refresh and self.raise_after is not None:
            error, self.raise_after = self.raise_after, None
            raise error("injected after the server answered", request=request)
        return httpx.Response(forwarded.status_code, headers=forwarded.headers, content=forwarded.content)

    def presented(self, refresh_token: str) -> int:
        quoted = urllib.parse.quote(refresh_token, safe="")
        return sum(1 for body in self.bodies if f"refresh_token={quoted}" in body or f"refresh_token={refresh_token}" in body)


def test_a_connect_error_retries_the_refresh_with_the_same_token(idp: Idp) -> None:
    store = tessera.MemoryStore()
    refresh_token = expired_with_refresh_token(idp, store)
    faulty = Faulty(raise_before=httpx.ConnectError)
    client = tessera.SyncClient(idp.issuer, store=store, transport=faulty.client, **idp.client_kwargs())
    assert client.authorization_header().startswith("Bearer ")
    assert faulty.presented(refresh_token) == 2, "nothing was sent: the same refresh token, once more"
    assert idp.stats()["refresh_grants"] == 1 and idp.stats()["password_grants"] == 1, "only the seed's login"


@pytest.mark.parametrize("error", [httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError])
def test_a_refresh_lost_after_sending_never_presents_that_token_again(idp: Idp, error: type) -> None:
    store = tessera.MemoryStore()
    refresh_token = expired_with_refresh_token(idp, store)
    faulty = Faulty(raise_after=error)
    client = tessera.SyncClient(idp.issuer, store=store, transport=faulty.client, **idp.client_kwargs())
    # The server rotated, the answer was lost: the password grant logs in again instead.
    header = client.authorization_header()
    assert header.startswith("Bearer ") and faulty.presented(refresh_token) == 1
    assert "grant_type=password" in faulty.bodies[-1]
    client.force_refresh()
    assert faulty.presented(refresh_token) == 1, "never presented again"
    assert idp.stats()["refresh_token_reuse_detected"] == 0


def test_a_refresh_token_grant_reports_the_unknown_outcome(idp: Idp) -> None:
    seed = tessera.SyncClient(idp.issuer, key="seed", **idp.client_kwargs()).login()
    assert seed.refresh_token
    faulty = Faulty(raise_after=httpx.ReadTimeout)
    client = tessera.SyncClient(
        idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, grant=tessera.RefreshToken(seed.refresh_token),
        transport=faulty.client,
    )
    # It cannot log in by itself: a person must, and the message says why.
    with pytest.raises(tessera.ReauthenticationRequired, match="the outcome is unknown") as raised:
        client.authorization_header()
    assert not raised.value.transient
    assert not any(secret in str(raised.value) for secret in [*SECRETS, seed.refresh_token])
    with pytest.raises(tessera.TesseraError):
        client.authorization_header()
    assert faulty.presented(seed.refresh_token) == 1, "the spent token is not presented again"


def urllib_transport(calls: List[tessera.HttpRequest]) -> Callable[[tessera.HttpRequest], tessera.HttpResponse]:
    def send(request: tessera.HttpRequest) -> tessera.HttpResponse:
        calls.append(request)
        sent = urllib.request.Request(request.url, data=request.body, method=request.method, headers=request.headers)
        try:
            with urllib.request.urlopen(sent, timeout=request.timeout) as answer:
                return tessera.HttpResponse(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as refused:
            return tessera.HttpResponse(refused.code, dict(refused.headers), refused.read())
        except urllib.error.URLError as failed:
            raise tessera.TransportError(str(failed.reason), transport_kind="connect") from failed

    return send


def test_a_callable_of_the_documented_shape_is_a_transport(idp: Idp) -> None:
    calls: List[tessera.HttpRequest] = []
    client = tessera.SyncClient(idp.issuer, transport=urllib_transport(calls), timeout=7, **idp.client_kwargs())
    assert client.authorization_header().startswith("Bearer ")
    assert [c.method for c in calls] == ["GET", "POST"] and calls[1].timeout == 7
    assert calls[1].url == idp.url("/token") and calls[1].headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert calls[1].body and b"grant_type=password" in calls[1].body
    assert ALICE[1] not in repr(calls[1]) and CLIENT_SECRET not in repr(calls[1])

    async def main() -> None:
        async def send(request: tessera.HttpRequest) -> httpx.Response:  # an httpx.Response is accepted as is
            async with httpx.AsyncClient() as http:
                return await http.request(request.method, request.url, headers=request.headers, content=request.body)

        async with tessera.Client(idp.issuer, transport=send, **idp.client_kwargs()) as client:
            assert (await client.force_refresh()).startswith("Bearer ")

    asyncio.run(main())


def test_a_callables_other_exceptions_and_wrong_answers_count_as_connection_closed(idp: Idp) -> None:
    class Broken(Exception):
        pass

    def broken(request: tessera.HttpRequest) -> tessera.HttpResponse:
        raise Broken("the password is " + ALICE[1])

    client = tessera.SyncClient(idp.issuer, transport=broken, **idp.client_kwargs())
    with pytest.raises(tessera.TransportError) as raised:
        client.authorization_header()
    assert raised.value.transport_kind == "connection_closed" and "Broken raised by the transport" in str(raised.value)
    assert ALICE[1] not in str(raised.value), "the callable's own message is not repeated"

    client = tessera.SyncClient(idp.issuer, transport=lambda request: "not a response", **idp.client_kwargs())
    with pytest.raises(tessera.TransportError, match="TypeError raised by the transport"):
        client.authorization_header()


def test_tesseras_rules_still_hold_around_a_transport(idp: Idp) -> None:
    calls: List[tessera.HttpRequest] = []
    # Plain http off loopback is refused before the transport is called.
    client = tessera.SyncClient(
        token_endpoint="http://idp.example.com/token", transport=urllib_transport(calls), **idp.client_kwargs()
    )
    with pytest.raises(tessera.TransportError) as raised:
        client.authorization_header()
    assert raised.value.transport_kind == "invalid_url" and calls == []
    # A body past the cap (1 MiB) is refused.
    huge = lambda request: tessera.HttpResponse(200, {"content-type": "application/json"}, b" " * (2 << 20))  # noqa: E731
    client = tessera.SyncClient(idp.issuer, transport=huge, **idp.client_kwargs())
    with pytest.raises(tessera.TransportError) as raised:
        client.authorization_header()
    assert raised.value.transport_kind == "body_too_large"
    with pytest.raises(TypeError, match="transport must be"):
        tessera.SyncClient(idp.issuer, transport=42, **idp.client_kwargs())  # type: ignore[arg-type]


def test_keywords_for_tesseras_own_client_are_refused_next_to_a_transport(idp: Idp) -> None:
    with httpx.Client() as http:
        for keyword in ({"proxy": "http://proxy.invalid:3128"}, {"ca_file": "/nonexistent.pem"}, {"no_proxy": "*"},
                        {"user_agent": "x/1"}):
            with pytest.raises(tessera.ConfigurationError, match=f"{next(iter(keyword))} configures tessera's own"):
                tessera.SyncClient(idp.issuer, transport=http, **keyword, **idp.client_kwargs())  # type: ignore[arg-type]
        # These still apply around any transport.
        client = tessera.SyncClient(idp.issuer, transport=http, timeout=5, allow_insecure_http=True, **idp.client_kwargs())
        assert client.authorization_header().startswith("Bearer ")
