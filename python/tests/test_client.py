"""The async and sync clients against the reference IdP binary: login, refresh with rotation,
single-flight under concurrency, the grants, typed errors, and secrets kept out of reprs."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

import tessera
from conftest import ALICE, BOB, BOB_TOTP_SECRET, CLIENT_ID, CLIENT_SECRET, SECRETS, Idp


def client(idp: Idp, **overrides: object) -> tessera.Client:
    return tessera.Client(idp.issuer, **idp.client_kwargs(**overrides))


def sync_client(idp: Idp, **overrides: object) -> tessera.SyncClient:
    return tessera.SyncClient(idp.issuer, **idp.client_kwargs(**overrides))


async def whoami(idp: Idp, header: str) -> dict:
    import httpx

    async with httpx.AsyncClient() as http:
        response = await http.get(idp.url("/api/whoami"), headers={"Authorization": header})
        response.raise_for_status()
        return dict(response.json())


async def test_async_login_caches_and_serves_the_api(idp: Idp) -> None:
    async with client(idp) as c:
        assert c.cached_header() is None
        header = await c.authorization_header()
        assert header.startswith("Bearer ")
        assert c.cached_header() == header
        assert await c.authorization_header() == header, "cached"
        assert await c.access_token() == header.removeprefix("Bearer ")
        tokens = await c.tokens()
        assert tokens.access_token == header.removeprefix("Bearer ")
        assert tokens.refresh_token and tokens.access_valid(60) and tokens.refresh_valid(timedelta(seconds=60))
        assert not tokens.access_valid(3600), "a 300 s token is not valid an hour from now"
        assert isinstance(tokens.expires_at, datetime) and tokens.expires_at.tzinfo is not None
        assert tokens.expires_at_ms is not None and abs(tokens.expires_at_ms - tessera.current_time_ms() - 300_000) < 5_000
        assert (await whoami(idp, header))["sub"] == "alice"
    stats = idp.stats()
    assert (stats["token_requests"], stats["password_grants"]) == (1, 1)


def test_sync_client_has_the_same_shape(idp: Idp) -> None:
    with sync_client(idp) as c:
        header = c.authorization_header()
        assert header.startswith("Bearer ") and c.authorization_header() == header
        assert c.access_token() == header.removeprefix("Bearer ")
        assert c.tokens().access_token == c.access_token()
        refreshed = c.force_refresh()
        assert refreshed != header and c.authorization_header() == refreshed
        logged_in = c.login()
        assert logged_in.access_token == c.access_token()
        result = c.logout()
        assert result.revoked and result.had_tokens and result.revocation_error is None
        assert c.cached_header() is None
    stats = idp.stats()
    assert (stats["password_grants"], stats["refresh_grants"], stats["revocations"]) == (2, 1, 1)


async def test_force_refresh_rotates_the_refresh_token(idp: Idp) -> None:
    c = client(idp)
    first = await c.tokens()
    header = await c.force_refresh()
    second = await c.tokens()
    assert header == "Bearer " + second.access_token != "Bearer " + first.access_token
    assert second.refresh_token and second.refresh_token != first.refresh_token, "rotated"
    stats = idp.stats()
    assert (stats["refresh_grants"], stats["refresh_token_reuse_detected"]) == (1, 0)


async def test_expired_token_is_refreshed_once(idp: Idp) -> None:
    idp.access_token_ttl(1)
    c = client(idp)
    first = await c.authorization_header()
    await asyncio.sleep(1.2)
    assert c.cached_header() is None
    second = await c.authorization_header()
    assert second != first
    stats = idp.stats()
    assert (stats["password_grants"], stats["refresh_grants"]) == (1, 1)


async def test_a_thousand_concurrent_callers_make_one_token_request(idp: Idp) -> None:
    c = client(idp)
    headers = await asyncio.gather(*(c.authorization_header() for _ in range(1000)))
    assert len(set(headers)) == 1
    assert idp.stats()["token_requests"] == 1
    # And once expired, a thousand callers make one refresh.
    idp.access_token_ttl(1)
    await c.force_refresh()
    await asyncio.sleep(1.2)
    refreshed = await asyncio.gather(*(c.authorization_header() for _ in range(1000)))
    assert len(set(refreshed)) == 1 and refreshed[0] != headers[0]
    assert idp.stats()["refresh_grants"] == 2, "one forced, one for 1000 callers"


def test_sixteen_threads_make_one_token_request(idp: Idp) -> None:
    c = sync_client(idp)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(c.authorization_header())) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 16 and len(set(results)) == 1
    assert idp.stats()["token_requests"] == 1


async def test_sync_and_async_views_share_one_session(idp: Idp) -> None:
    c = client(idp)
    header = await c.authorization_header()
    assert c.sync.cached_header() == header and c.sync.aio.cached_header() == header
    assert idp.stats()["token_requests"] == 1


async def test_password_with_totp_secret_logs_in_unattended(idp: Idp) -> None:
    grant = tessera.Password(*BOB, totp_secret=BOB_TOTP_SECRET)
    assert grant.unattended and grant.name == "password" and grant.username == "bob"
    c = client(idp, grant=grant)
    assert (await whoami(idp, await c.authorization_header()))["sub"] == "bob"
    # A TOTP code typed by the user works once too (generated here from the secret for the test).
    code = _totp(BOB_TOTP_SECRET)
    with_code = tessera.Password(*BOB, totp=code)
    assert not with_code.unattended
    assert (await client(idp, grant=with_code).tokens()).access_token


async def test_bob_without_totp_is_refused(idp: Idp) -> None:
    with pytest.raises(tessera.AuthenticationError) as raised:
        await client(idp, grant=tessera.Password(*BOB)).authorization_header()
    assert raised.value.code == "invalid_grant"


async def test_client_credentials_refresh_token_and_static_grants(idp: Idp) -> None:
    service = tessera.Client(idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scope=["api:read"])
    assert await service.access_token()
    assert idp.stats()["client_credentials_grants"] == 1

    refresh_token = (await client(idp).tokens()).refresh_token
    assert refresh_token
    from_refresh = client(idp, grant=tessera.RefreshToken(refresh_token))
    assert (await whoami(idp, await from_refresh.authorization_header()))["sub"] == "alice"
    assert idp.stats()["refresh_grants"] == 1

    static = tessera.Client(token_url=idp.url("/token"), client_id="unused", grant=tessera.StaticToken("abc"))
    assert await static.authorization_header() == "Bearer abc"
    expired = tessera.SyncClient(
        token_url=idp.url("/token"), client_id="unused", grant=tessera.StaticToken("abc", expires_at=time.time() - 10)
    )
    with pytest.raises(tessera.ReauthenticationRequired) as raised:
        expired.authorization_header()
    assert not raised.value.transient and raised.value.kind == "reauthentication_required"


async def test_provider_config_layer(idp: Idp) -> None:
    provider = tessera.ProviderConfig(
        tessera.ClientAuth.basic(CLIENT_ID, CLIENT_SECRET),
        tessera.Endpoints.explicit(idp.url("/token"), revocation_url=idp.url("/revoke")),
        tessera.Password(*ALICE),
        scope="openid api:read",
    )
    c = tessera.Client(provider=provider, key="alice@dev")
    assert c.key == "alice@dev"
    assert (await c.tokens()).scope
    assert (await c.logout()).revoked
    assert idp.stats()["discovery_requests"] == 0, "explicit endpoints: no discovery"
    with pytest.raises(tessera.ConfigurationError):
        tessera.Client(idp.issuer, provider=provider)


async def test_wrong_password_is_an_authentication_error(idp: Idp) -> None:
    c = client(idp, grant=tessera.Password("alice", "wrong-password"))
    with pytest.raises(tessera.AuthenticationError) as raised:
        await c.authorization_header()
    error = raised.value
    assert isinstance(error, tessera.TesseraError)
    assert (error.code, error.status, error.transient, error.kind) == ("invalid_grant", 400, False, "oauth")
    assert error.endpoint == idp.url("/token")
    assert "wrong-password" not in str(error) + repr(error)
    # The sync front end raises the same.
    with pytest.raises(tessera.AuthenticationError):
        sync_client(idp, grant=tessera.Password("alice", "wrong-password")).authorization_header()


async def test_server_faults_become_typed_errors(idp: Idp) -> None:
    idp.fault("token", {"type": "malformed_json"})
    with pytest.raises(tessera.MalformedResponseError) as malformed:
        await client(idp).authorization_header()
    assert not malformed.value.transient

    idp.fault("token", {"type": "html_error_page", "status": 502}, times=5)
    with pytest.raises(tessera.UnexpectedStatusError) as unexpected:
        await client(idp).authorization_header()
    assert unexpected.value.status == 502 and unexpected.value.transient
    idp.reset()

    idp.fault("token", {"type": "drop_connection"}, times=5)
    with pytest.raises(tessera.TransportError) as dropped:
        await client(idp).authorization_header()
    assert dropped.value.transient and dropped.value.transport_kind == "connection_closed"
    idp.reset()

    idp.fault("token", {"type": "status", "status": 503, "body": "busy"}, times=1)
    assert await client(idp).authorization_header(), "a transient failure is retried"


def test_unreachable_server_is_a_transport_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    c = tessera.SyncClient(token_url=f"http://127.0.0.1:{port}/token", client_id="c", client_secret="s", timeout=5)
    with pytest.raises(tessera.TransportError) as raised:
        c.authorization_header()
    assert raised.value.transport_kind == "connect" and raised.value.transient


def test_configuration_errors() -> None:
    with pytest.raises(tessera.ConfigurationError):
        tessera.Password("a", "b", totp="123456", totp_secret="JBSWY3DP")
    with pytest.raises(ValueError):  # ConfigurationError is a ValueError too
        tessera.Client(client_id="c")
    with pytest.raises(tessera.ConfigurationError):
        tessera.Client("https://idp", token_url="https://idp/token", client_id="c")
    with pytest.raises(tessera.ConfigurationError):
        tessera.Client("https://idp", client_id="c", client_auth="basic")
    with pytest.raises(tessera.ConfigurationError):
        tessera.Client("https://idp", client_id="c", client_secret="s", refresh_skew=-1)
    with pytest.raises(TypeError):
        tessera.Client("https://idp", client_id="c", store=object())


async def test_awaiting_needs_a_running_loop_only_on_a_miss(idp: Idp) -> None:
    c = client(idp)
    await c.authorization_header()
    ready = c.authorization_header()
    assert type(ready).__name__ == "Ready", "a cached header builds no future"
    assert await ready == c.cached_header()
    header = c.cached_header()
    assert await asyncio.gather(c.authorization_header(), c.access_token()) == [header, header.removeprefix("Bearer ")]
    assert await asyncio.ensure_future(c.authorization_header()) == header


def test_the_async_api_needs_a_running_loop_on_a_miss(idp: Idp) -> None:
    with pytest.raises(RuntimeError):
        tessera.Client(idp.issuer, **idp.client_kwargs()).authorization_header()
    assert idp.stats()["token_requests"] == 0


def test_token_set_and_utilities() -> None:
    now = tessera.current_time_ms()
    assert abs(now - time.time() * 1000) < 1000
    assert tessera.is_expired(now - 1) and not tessera.is_expired(now + 60_000) and not tessera.is_expired(None)
    assert tessera.is_near_expiry(now + 5_000, 10_000) and not tessera.is_near_expiry(now + 60_000, 10_000)
    assert tessera.is_near_expiry(1_000, 500, now_ms=600) and not tessera.is_near_expiry(1_000, 500, now_ms=400)

    tokens = tessera.TokenSet("at-secret", expires_in=60, refresh_token="rt-secret", scope="api:read")
    assert tokens.access_valid() and tokens.access_valid(30) and not tokens.access_valid(timedelta(minutes=2))
    assert tokens.refresh_valid() and not tokens.is_expired() and tokens.is_near_expiry(120)
    assert tokens == tessera.TokenSet.from_json(tokens.to_json())
    expired = tessera.TokenSet("x", expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert expired.is_expired() and not expired.refresh_valid()
    assert tessera.TokenSet("x").access_valid(10**6), "no expiry: always valid"
    with pytest.raises(tessera.ConfigurationError) as raised:
        tessera.TokenSet.from_json('{"access_token": "leaky-secret"')
    assert "leaky-secret" not in str(raised.value)


async def test_secrets_appear_in_no_repr_or_str(idp: Idp) -> None:
    c = client(idp, grant=tessera.Password(*BOB, totp_secret=BOB_TOTP_SECRET))
    tokens = await c.tokens()
    secrets = SECRETS + [tokens.access_token, tokens.refresh_token, tokens.id_token]
    objects: list = [
        c,
        c.sync,
        tokens,
        tessera.Password(*BOB, totp_secret=BOB_TOTP_SECRET),
        tessera.Password(*BOB, totp="123456"),
        tessera.RefreshToken(CLIENT_SECRET),
        tessera.StaticToken(CLIENT_SECRET),
        tessera.ClientAuth(CLIENT_ID, CLIENT_SECRET),
        tessera.ProviderConfig(
            tessera.ClientAuth.basic(CLIENT_ID, CLIENT_SECRET), tessera.Endpoints.discover(idp.issuer), tessera.ClientCredentials()
        ),
        await c.logout(),
    ]
    try:
        await client(idp, grant=tessera.Password("alice", CLIENT_SECRET)).authorization_header()
    except tessera.AuthenticationError as error:
        objects.append(error)
        objects.append(error.args)
    for obj in objects:
        for text in (repr(obj), str(obj)):
            for secret in secrets:
                assert secret and secret not in text, f"{type(obj).__name__} shows a secret: {text}"
    assert "123456" not in repr(tessera.Password(*BOB, totp="123456"))


def _totp(secret: str, now: float | None = None) -> str:
    import base64
    import hashlib
    import hmac
    import struct

    key = base64.b32decode(secret)
    counter = int((now or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


async def test_logout_reports_a_failed_revocation_and_still_forgets(idp: Idp) -> None:
    c = client(idp)
    await c.authorization_header()
    idp.fault("revoke", {"type": "status", "status": 400, "body": "{\"error\":\"invalid_request\"}", "content_type": "application/json"})
    result = await c.logout()
    assert not result.revoked and result.had_tokens
    assert isinstance(result.revocation_error, tessera.TesseraError)
    assert "revocation_error=<error>" in repr(result)
    assert c.cached_header() is None
    nothing = await c.logout()
    assert not nothing.had_tokens


def test_ctrl_c_interrupts_a_slow_sync_call(idp: Idp) -> None:
    import _thread
    import signal

    # A runner started in the background (`cmd &`) inherits SIGINT ignored, and Python then never
    # raises KeyboardInterrupt: give this test Python's own handler, as a terminal session has it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # Every token request is answered 5 s late (not only the first: a stray request from an
        # earlier test's client must not take the only slow answer).
        idp.fault("token", {"type": "none"}, times=100, delay_ms=5_000)
        c = sync_client(idp)
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            c.authorization_header()
        timer.join()
        assert time.monotonic() - started < 3, "interrupted long before the server answered"
    finally:
        signal.signal(signal.SIGINT, previous)
        idp.reset()
