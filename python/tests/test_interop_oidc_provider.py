"""The same Python API against a third-party server: panva's oidc-provider (interop/)."""

from __future__ import annotations

import asyncio

import pytest

import tessera
from conftest import ALICE, BOB, BOB_TOTP_SECRET, CLIENT_ID, CLIENT_SECRET, OidcProvider


def client(op: OidcProvider, grant: tessera.Grant, **kwargs: object) -> tessera.Client:
    return tessera.Client(op.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, grant=grant, scope="openid api:read", **kwargs)  # type: ignore[arg-type]


async def test_password_login_refresh_and_logout(oidc_provider: OidcProvider) -> None:
    c = client(oidc_provider, tessera.Password(*ALICE))
    headers = await asyncio.gather(*(c.authorization_header() for _ in range(100)))
    assert len(set(headers)) == 1
    first = await c.tokens()
    refreshed = await c.force_refresh()
    assert refreshed != headers[0]
    assert (await c.tokens()).refresh_token != first.refresh_token, "oidc-provider rotates refresh tokens"
    result = await c.logout()
    assert result.revoked
    stats = oidc_provider.stats()
    assert stats["by_grant_type"].get("password") == 1 and stats["by_grant_type"].get("refresh_token") == 1
    assert stats["refresh_token_reuses"] == 0


def test_sync_totp_and_client_credentials(oidc_provider: OidcProvider) -> None:
    bob = tessera.SyncClient(
        oidc_provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scope="openid",
        grant=tessera.Password(*BOB, totp_secret=BOB_TOTP_SECRET),
    )
    assert bob.authorization_header().startswith("Bearer ")
    service = tessera.SyncClient(oidc_provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scope="api:read")
    assert service.access_token() == service.access_token()
    assert oidc_provider.stats()["by_grant_type"].get("client_credentials") == 1


async def test_wrong_password_is_invalid_grant(oidc_provider: OidcProvider) -> None:
    with pytest.raises(tessera.AuthenticationError) as raised:
        await client(oidc_provider, tessera.Password("alice", "wrong")).authorization_header()
    assert raised.value.code == "invalid_grant"
