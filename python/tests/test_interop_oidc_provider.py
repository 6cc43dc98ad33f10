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


def test_browser_login_with_chromium_then_refresh(oidc_provider: OidcProvider) -> None:
    from test_interactive import ChromiumPrompter, _require_chromium

    _require_chromium()
    prompter = ChromiumPrompter("alice", "any-password")
    # oidc-provider keeps offline_access (so issues a refresh token) only with prompt=consent.
    grant = tessera.Browser(extra_params={"prompt": "consent"}, timeout=120)
    with tessera.SyncClient(
        oidc_provider.issuer, client_id="native-client", grant=grant, scope="openid offline_access api:read",
        prompter=prompter, key="op/alice",
    ) as c:
        tokens = c.login()
        runs = prompter.finished()
        assert len(runs) == 1 and runs[0]["ok"], runs
        assert runs[0]["message"] == "Signed in to op/alice. You can close this tab."
        assert tokens.refresh_token and tokens.id_token
        assert c.force_refresh() != "Bearer " + tokens.access_token
    stats = oidc_provider.stats()["by_grant_type"]
    assert stats.get("authorization_code") == 1 and stats.get("refresh_token") == 1, stats
