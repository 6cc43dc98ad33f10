"""Registry + AuthClient: a TOML configuration with contexts, built-in providers (against the
reference IdP) next to a provider type written in Python and registered with a factory; one and
all forms of login/logout/refresh; credential models whose repr hides secrets."""

from __future__ import annotations

import asyncio
from typing import Dict, List, Optional

import pytest

import tessera
from conftest import ALICE, CLIENT_ID, CLIENT_SECRET, Idp

CATALOG_KEY = "qk_live_0123456789abcdef"


class ApiKeyProvider:
    """A custom provider type: an API key from the environment, checked at login."""

    def __init__(self, settings: tessera.ProviderSettings) -> None:
        settings.allow_fields(["key", "header", "account"])
        settings.required_string("key")  # a reference such as env:NAME, resolved at login
        self.settings = settings
        self.header = settings.string("header") or "x-api-key"
        self.account = settings.string("account")
        self.logged_in = False
        self.refreshes: List[bool] = []

    def description(self) -> str:
        return f"API key in {self.header}"

    def is_authenticated(self) -> bool:  # sync: runs on a worker thread
        return self.logged_in

    def extra_info(self) -> Dict[str, Optional[str]]:
        return {"account": self.account}

    async def login(self) -> None:  # async: awaited on the caller's loop
        key = self.settings.secret("key")
        if not key or not key.startswith("qk_"):
            raise self.settings.error("key", "must start with qk_")
        await asyncio.sleep(0)
        self.logged_in = True

    def logout(self) -> bool:
        self.logged_in = False
        return False

    def refresh(self, force: bool) -> None:
        self.refreshes.append(force)

    def credential(self) -> tessera.BasicCredential:
        return tessera.BasicCredential(
            self.settings.name,
            "authenticated" if self.logged_in else "available",
            auth_source=self.settings.string("key") or "",
            username=self.account,
        )


def config(idp: Idp) -> str:
    return f"""
current_context = "dev"

[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "peer"
provider = "password"
issuer = "{idp.issuer}"
client_id = "{CLIENT_ID}"
client_secret = "env:TESSERA_TEST_CLIENT_SECRET"
username = "{ALICE[0]}"
password = "env:TESSERA_TEST_PASSWORD"
[[contexts.auth_providers]]
name = "catalog"
provider = "api_key"
key = "env:TESSERA_TEST_CATALOG_KEY"
account = "team-42"

[[contexts]]
name = "prod"
[[contexts.auth_providers]]
name = "catalog"
provider = "api_key"
key = "env:TESSERA_TEST_CATALOG_KEY"
header = "authorization"
"""


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TESSERA_TEST_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("TESSERA_TEST_PASSWORD", ALICE[1])
    monkeypatch.setenv("TESSERA_TEST_CATALOG_KEY", CATALOG_KEY)


def registry(built: Optional[List[ApiKeyProvider]] = None) -> tessera.Registry:
    def factory(settings: tessera.ProviderSettings) -> ApiKeyProvider:
        provider = ApiKeyProvider(settings)
        if built is not None:
            built.append(provider)
        return provider

    reg = tessera.Registry()
    reg.register_factory("api_key", factory)
    return reg


async def test_custom_provider_is_configured_listed_and_logged_in(idp: Idp, secrets: None) -> None:
    built: List[ApiKeyProvider] = []
    reg = registry(built)
    # The built-in types (the list grows with the Rust crate), then api_key: replaced, not added.
    names = reg.type_names()
    assert names[:4] == ["password", "client_credentials", "refresh_token", "static"], names
    assert names.count("api_key") == 1 and {"device_code", "email_otp", "cognito", "browser"} <= set(names), names
    client = tessera.AuthClient.from_toml(config(idp), registry=reg, store=tessera.MemoryStore())
    assert client.context == "dev" and client.provider_names() == ["peer", "catalog"]
    assert [p.settings.context for p in built] == ["dev"], "only the current context is built"

    rows = {row.name: row for row in await client.list_providers()}
    assert (rows["catalog"].type, rows["catalog"].status) == ("api_key", "available")
    assert rows["catalog"].description == "API key in x-api-key"
    assert rows["catalog"].extra == {"account": "team-42"}
    assert rows["catalog"].capabilities == ["login", "refresh"]
    assert (rows["peer"].type, rows["peer"].status) == ("password", "available")
    assert "login" in rows["peer"].capabilities and "token" in rows["peer"].capabilities
    assert not await client.is_authenticated()

    assert await client.login() == {"peer": True, "catalog": True}
    assert idp.stats()["password_grants"] == 1
    assert await client.is_authenticated("catalog") and await client.is_authenticated("peer")
    rows = {row.name: row for row in await client.list_providers()}
    assert rows["catalog"].status == rows["peer"].status == "authenticated"

    catalog = await client.credential("catalog")
    assert isinstance(catalog, tessera.BasicCredential)
    assert (catalog.status, catalog.username, catalog.auth_source) == ("authenticated", "team-42", "env:TESSERA_TEST_CATALOG_KEY")
    assert CATALOG_KEY not in repr(catalog)
    peer = await client.credential("peer")
    assert isinstance(peer, tessera.OAuthCredential)
    assert peer.access_token and peer.refresh_token and peer.client_id == CLIENT_ID and peer.allows_refresh
    assert peer.access_token not in repr(peer) and peer.refresh_token not in repr(peer) and "<redacted>" in repr(peer)

    assert await client.refresh_credentials("peer", force=True) == {"peer": True}
    assert idp.stats()["refresh_grants"] == 1
    assert await client.refresh_credentials() == {"peer": True, "catalog": True}
    assert built[0].refreshes == [False]
    assert await client.logout("catalog") == {"catalog": True}
    assert not await client.is_authenticated("catalog")
    assert await client.logout() == {"peer": True, "catalog": True}
    assert not await client.is_authenticated()


def test_sync_facade_other_context_and_one_form_errors(idp: Idp, secrets: None, monkeypatch: pytest.MonkeyPatch) -> None:
    client = tessera.SyncAuthClient.from_toml(config(idp), registry=registry(), context="prod")
    assert client.context == "prod" and client.provider_names() == ["catalog"]
    assert [row.description for row in client.list_providers()] == ["API key in authorization"]
    assert client.login("catalog") == {"catalog": True}
    assert client.aio.context == "prod"
    with pytest.raises(tessera.ConfigurationError, match="no provider named"):
        client.credential("peer")
    monkeypatch.setenv("TESSERA_TEST_CATALOG_KEY", "not-a-key")
    with pytest.raises(tessera.ConfigurationError, match="must start with qk_") as failure:
        client.login("catalog")
    assert "catalog" in str(failure.value) and "prod" in str(failure.value), "the error names context and provider"
    assert client.login() == {"catalog": False}, "all: best effort, never raised"


def test_configuration_errors_name_the_place(idp: Idp, secrets: None) -> None:
    with pytest.raises(tessera.ConfigurationError, match="api_key"):
        tessera.AuthClient.from_toml(config(idp), origin="team.toml")  # type not registered
    bad = config(idp).replace('account = "team-42"', 'acount = "team-42"')
    with pytest.raises(tessera.ConfigurationError) as failure:
        tessera.AuthClient.from_toml(bad, registry=registry(), origin="team.toml")
    assert all(part in str(failure.value) for part in ("team.toml", "dev", "catalog", "acount"))

    class FactoryBroke(Exception):
        pass

    def broken(settings: tessera.ProviderSettings) -> object:
        raise FactoryBroke(settings.store_key)

    reg = tessera.Registry()
    reg.register_factory("api_key", broken)
    with pytest.raises(FactoryBroke, match="dev/catalog"):
        tessera.AuthClient.from_toml(config(idp), registry=reg)
    reg.register_factory("api_key", lambda settings: object())
    with pytest.raises(TypeError, match="is_authenticated"):
        tessera.AuthClient.from_toml(config(idp), registry=reg)
    with pytest.raises(TypeError, match="callable"):
        reg.register_factory("api_key", "not a factory")  # type: ignore[arg-type]


def test_credential_models_redact_and_validate() -> None:
    oauth = tessera.OAuthCredential("svc", "expired", access_token="at-secret", refresh_token="rt-secret", expires_at=0)
    assert oauth.access_token == "at-secret" and "secret" not in repr(oauth) and oauth.expires_at is not None
    basic = tessera.BasicCredential("k", "error", auth_source="env:K", login_time=1_700_000_000)
    assert basic.login_time is not None and basic.login_time.year == 2023
    with pytest.raises(tessera.ConfigurationError, match="status"):
        tessera.BasicCredential("k", "fine", auth_source="env:K")  # type: ignore[arg-type]
