"""API keys against the reference IdP: a user's client manages keys (async and sync), an admin sees
everyone's, and the ApiKeyGrant sends a key that the server accepts until it is revoked."""

from __future__ import annotations

import asyncio
import urllib.error
import uuid
import urllib.request
from datetime import timedelta

import pytest

import tessera

from conftest import ALICE, BOB, BOB_TOTP_SECRET, CLIENT_ID, CLIENT_SECRET, Idp


def user(idp: Idp, who: tuple = ALICE, **extra: str) -> tessera.SyncClient:
    return tessera.SyncClient(
        idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, grant=tessera.Password(*who, **extra),
        scope="openid api:read", key=who[0],
    )


def whoami(idp: Idp, header: str) -> int:
    request = urllib.request.Request(idp.url("/api/whoami"), headers={"authorization": header})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_async_create_list_get_revoke(idp: Idp) -> None:
    async def main() -> None:
        client = user(idp).aio
        keys = tessera.ApiKeys(client, idp.issuer)
        ci, laptop = f"ci-{uuid.uuid4().hex[:8]}", f"laptop-{uuid.uuid4().hex[:8]}"
        key, secret = await keys.create(ci, expires_in_days=7)
        assert secret.startswith("qk_") and secret not in repr(key)
        assert key.status == "ACTIVE" and key.name == ci and key.created_by_email == "alice@example.com"
        assert key.expires_at - key.created_at == timedelta(days=7)
        other, _ = await keys.create(laptop)
        assert other.expires_at - other.created_at == timedelta(days=90)

        listed = [k.id for k in await keys.list()]
        assert listed.index(key.id) < listed.index(other.id), "oldest first"
        assert [k.id for k in await keys.list(name=laptop)] == [other.id]
        assert [k.id for k in await keys.list(fingerprint=key.fingerprint)] == [key.id]
        assert await keys.get(key.id) == key
        assert await keys.get("no-such-key") is None

        revoked = await keys.revoke(key.id)
        assert revoked.id == key.id and revoked.status == "REVOKED"
        revoked_ids = [k.id for k in await keys.list(status="revoked")]
        active_ids = [k.id for k in await keys.list(status="ACTIVE")]
        assert key.id in revoked_ids and key.id not in active_ids and other.id in active_ids

        with pytest.raises(tessera.ConfigurationError, match="between 1 and 365"):
            await keys.create("ci", expires_in_days=366)

    asyncio.run(main())


BOUNDS = "configuration error: expires_in_days must be between 1 and 365 days"


@pytest.mark.parametrize("days", [-1, 0, 366, 10**30, -(10**30)])
def test_a_lifetime_outside_1_to_365_days_is_refused_before_sending(idp: Idp, days: int) -> None:
    # The same typed error as the Rust client's, for any int (never an OverflowError), sync and async;
    # the server at 127.0.0.1:1 is never reached.
    nowhere = tessera.SyncApiKeys("unused-token", "http://127.0.0.1:1")
    with pytest.raises(tessera.ConfigurationError) as raised:
        nowhere.create("ci", expires_in_days=days)
    assert str(raised.value) == BOUNDS and isinstance(raised.value, ValueError)

    async def main() -> None:
        with pytest.raises(tessera.ConfigurationError, match="between 1 and 365"):
            await tessera.ApiKeys("unused-token", "http://127.0.0.1:1").create("ci", expires_in_days=days)

    asyncio.run(main())
    # A real server: refused before the request too (nothing is created).
    keys = tessera.SyncApiKeys(user(idp), idp.issuer)
    name = f"bounds-{uuid.uuid4().hex[:8]}"
    with pytest.raises(tessera.ConfigurationError, match="between 1 and 365"):
        keys.create(name, expires_in_days=days)
    assert keys.list(name=name) == []


def test_lifetime_bounds_and_types(idp: Idp) -> None:
    keys = tessera.SyncApiKeys(user(idp), idp.issuer)
    for days in (1, 365):
        key, _ = keys.create(f"edge-{days}", expires_in_days=days)
        assert key.expires_at - key.created_at == timedelta(days=days)
    key, _ = keys.create("default", expires_in_days=None)
    assert key.expires_at - key.created_at == timedelta(days=90), "None: the default"
    for wrong in ("30", 30.0, True):
        with pytest.raises(TypeError, match="must be an int"):
            keys.create("ci", expires_in_days=wrong)  # type: ignore[arg-type]


def test_a_key_works_as_a_grant_until_revoked_by_its_secret(idp: Idp, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tessera.SyncApiKeys(user(idp), idp.issuer)
    key, secret = keys.create("ci")
    monkeypatch.setenv("TESSERA_API_KEY", f"  {secret}\n")
    with tessera.SyncClient(grant=tessera.ApiKeyGrant()) as ci:
        header = ci.authorization_header()
    assert header == f"Bearer {secret}"
    assert whoami(idp, header) == 200
    assert keys.revoke_by_secret(secret).id == key.id
    assert whoami(idp, header) == 401
    assert keys.get(key.id).status == "REVOKED"  # type: ignore[union-attr]


def test_api_key_grant_errors_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TESSERA_API_KEY", raising=False)
    with pytest.raises(tessera.ReauthenticationRequired, match="TESSERA_API_KEY"):
        tessera.ApiKeyGrant()
    with pytest.raises(tessera.ConfigurationError, match="API key must start with 'qk_'") as raised:
        tessera.ApiKeyGrant("sk_live_s3cret")
    assert "s3cret" not in str(raised.value)
    grant = tessera.ApiKeyGrant("msk_abc", prefix="msk_")
    assert "msk_abc" not in repr(grant)
    with pytest.raises(tessera.ConfigurationError, match="status"):
        tessera.SyncApiKeys("token", "http://127.0.0.1:1").list(status="GONE")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ApiKeys needs"):
        tessera.ApiKeys(42, "http://127.0.0.1:1")  # type: ignore[arg-type]


def test_admin_sees_and_revokes_every_users_keys(idp: Idp) -> None:
    bob_keys = tessera.SyncApiKeys(user(idp, BOB, totp_secret=BOB_TOTP_SECRET), idp.issuer)
    name = f"bob-ci-{uuid.uuid4().hex[:8]}"
    bob_key, _ = bob_keys.create(name)
    with pytest.raises(tessera.AuthenticationError, match="not an administrator") as raised:
        bob_keys.admin().list()
    assert raised.value.status == 403  # type: ignore[attr-defined]

    admin = tessera.SyncApiKeys(user(idp), idp.issuer).admin()
    assert bob_key.id in [k.id for k in admin.list(email="bob@example.com")]
    assert all(k.created_by_email == "bob@example.com" for k in admin.list(email="bob@example.com"))
    assert [k.id for k in admin.list(key_name=name, status="ACTIVE")] == [bob_key.id]
    assert admin.get(bob_key.id) == bob_key
    assert admin.revoke(bob_key.id).status == "REVOKED"
    assert bob_keys.get(bob_key.id).status == "REVOKED"  # type: ignore[union-attr]

    async def via_async() -> None:
        keys = tessera.ApiKeys(user(idp).aio, idp.issuer)
        listed = await keys.admin().list(email="bob@example.com", status="REVOKED")
        assert bob_key.id in [k.id for k in listed] and all(k.status == "REVOKED" for k in listed)
        assert await keys.admin().get("missing") is None

    asyncio.run(via_async())
