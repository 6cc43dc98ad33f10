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


# --- Headers and tokens by provider name (qlam_core style), quilt3's logged_in() ------------------

HEADERS_CONFIG = """
[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "peer"
type = "password"
issuer = "{issuer}"
client_id = "{client_id}"
client_secret = "env:TESSERA_TEST_CLIENT_SECRET"
username = "{username}"
password = "env:TESSERA_TEST_PASSWORD"
[[contexts.auth_providers]]
name = "catalog"
type = "header_key"
[[contexts.auth_providers]]
name = "search"
type = "token_only"
[[contexts.auth_providers]]
name = "bare"
type = "bare"
"""


class HeaderKeyProvider:
    """qlam_core style: the provider knows its own headers (an async ``get_headers()`` here)."""

    def __init__(self, settings: tessera.ProviderSettings) -> None:
        self.name = settings.name
        self.calls = 0

    def is_authenticated(self) -> bool:
        return True

    def auth_context(self) -> Dict[str, str]:
        return {"url": "https://catalog.example"}

    def credential(self) -> tessera.BasicCredential:
        return tessera.BasicCredential(self.name, "authenticated", auth_source="env:CATALOG_KEY")

    async def get_headers(self) -> Dict[str, str]:
        self.calls += 1
        return {"X-Api-Key": CATALOG_KEY, "X-Account": "team-42"}


class TokenOnlyProvider:
    """A provider with ``token()`` (a plain string) and no headers of its own."""

    def __init__(self, settings: tessera.ProviderSettings) -> None:
        self.name = settings.name

    def is_authenticated(self) -> bool:
        return False

    def credential(self) -> tessera.BasicCredential:
        return tessera.BasicCredential(self.name, "available", auth_source="none")

    def token(self) -> str:
        return "search-token"


class BareProvider:
    """Neither headers nor a token; its status() fails with an exception of its own."""

    class CatalogDown(Exception):
        pass

    def __init__(self, settings: tessera.ProviderSettings) -> None:
        self.name = settings.name

    def is_authenticated(self) -> bool:
        return False

    def status(self) -> str:
        raise BareProvider.CatalogDown("catalog.example answered 503")

    def credential(self) -> tessera.BasicCredential:
        return tessera.BasicCredential(self.name, "available", auth_source="none")


def headers_registry(built: Dict[str, object]) -> tessera.Registry:
    reg = tessera.Registry()
    for type_name, cls in (("header_key", HeaderKeyProvider), ("token_only", TokenOnlyProvider), ("bare", BareProvider)):
        def factory(settings: tessera.ProviderSettings, cls: type = cls) -> object:
            built[settings.name] = provider = cls(settings)
            return provider

        reg.register_factory(type_name, factory)
    return reg


def headers_config(idp: Idp) -> str:
    return HEADERS_CONFIG.format(issuer=idp.issuer, client_id=CLIENT_ID, username=ALICE[0])


async def test_headers_and_tokens_by_provider_name(idp: Idp, secrets: None) -> None:
    built: Dict[str, object] = {}
    store = tessera.MemoryStore()
    client = tessera.AuthClient.from_toml(headers_config(idp), registry=headers_registry(built), store=store)

    # A built-in OAuth provider: its bearer header, logged in on first use (a grant that needs nobody).
    headers = await client.headers("peer")
    stored = store.load("dev/peer")
    assert stored is not None and headers == {"authorization": f"Bearer {stored.access_token}"}
    assert await client.headers("peer") == headers and idp.stats()["token_requests"] == 1, "served from the cache"

    # A Python provider's own get_headers() is honoured as is (names as it wrote them).
    assert await client.headers("catalog") == {"X-Api-Key": CATALOG_KEY, "X-Account": "team-42"}
    assert built["catalog"].calls == 1  # type: ignore[attr-defined]
    rows = {row.name: row for row in await client.list_providers()}
    assert rows["catalog"].capabilities == ["http_headers"] and rows["search"].capabilities == ["token"]

    # A provider with a token and no headers: a bearer header from its token.
    assert await client.headers("search") == {"authorization": "Bearer search-token"}
    search = await client.token("search")
    assert (search.access_token, search.expires_at) == ("search-token", None)

    # token(name, min_valid=...): the TokenSet; a 300-s token is replaced when 10 minutes are asked for.
    peer = await client.token("peer")
    assert peer.access_token == stored.access_token
    assert (await client.token("peer", min_valid=60)).access_token == peer.access_token, "valid long enough"
    longer = await client.token("peer", min_valid=600)
    assert longer.access_token != peer.access_token and idp.stats()["token_requests"] == 2

    # Errors: a provider with neither, a provider without tokens, an unknown name.
    with pytest.raises(tessera.ConfigurationError, match="does not support HTTP headers or tokens"):
        await client.headers("bare")
    with pytest.raises(tessera.ConfigurationError, match="does not support tokens"):
        await client.token("catalog")
    with pytest.raises(tessera.ConfigurationError, match=r"no provider named \"nope\" \(have: peer, catalog"):
        await client.headers("nope")
    with pytest.raises(tessera.ConfigurationError, match="non-negative"):
        await client.token("peer", min_valid=-1)


def test_sync_headers_tokens_and_the_providers_own_exceptions(idp: Idp, secrets: None, monkeypatch: pytest.MonkeyPatch) -> None:
    client = tessera.SyncAuthClient.from_toml(headers_config(idp), registry=headers_registry({}))
    assert client.headers("catalog")["X-Api-Key"] == CATALOG_KEY
    peer = client.token("peer", min_valid=0)
    assert client.headers("peer") == {"authorization": f"Bearer {peer.access_token}"}

    # An exception raised by get_headers() reaches the caller unchanged; a wrong answer is a TypeError.
    class Unreachable(Exception):
        pass

    def unreachable(self: HeaderKeyProvider) -> Dict[str, str]:
        raise Unreachable("vault sealed")

    monkeypatch.setattr(HeaderKeyProvider, "get_headers", unreachable)
    client = tessera.SyncAuthClient.from_toml(headers_config(idp), registry=headers_registry({}))
    with pytest.raises(Unreachable, match="vault sealed"):
        client.headers("catalog")
    monkeypatch.setattr(HeaderKeyProvider, "get_headers", lambda self: ["not", "a", "mapping"])
    client = tessera.SyncAuthClient.from_toml(headers_config(idp), registry=headers_registry({}))
    with pytest.raises(TypeError, match="mapping"):
        client.headers("catalog")
    monkeypatch.setattr(TokenOnlyProvider, "token", lambda self: 42)
    client = tessera.SyncAuthClient.from_toml(headers_config(idp), registry=headers_registry({}))
    with pytest.raises(TypeError, match="str or a tessera.TokenSet"):
        client.token("search")


def test_a_python_providers_exception_is_listed_as_it_was_raised(idp: Idp, secrets: None) -> None:
    client = tessera.SyncAuthClient.from_toml(headers_config(idp), registry=headers_registry({}))
    rows = {row.name: row for row in client.list_providers()}
    assert rows["bare"].status == "error"
    assert rows["bare"].error == "BareProvider.status raised CatalogDown: catalog.example answered 503"
    assert rows["peer"].error is None and rows["catalog"].error is None

    # A Python store's exception under a built-in provider: named the same way, not as a store I/O error.
    class Disk:
        def load(self, key: str) -> None:
            raise OSError(28, "No space left on device")

        def save(self, key: str, tokens: tessera.TokenSet) -> None:
            pass

    client = tessera.SyncAuthClient.from_toml(headers_config(idp), registry=headers_registry({}), store=Disk())
    peer = {row.name: row for row in client.list_providers()}["peer"]
    assert (peer.status, peer.error) == ("error", "Disk.load raised OSError: [Errno 28] No space left on device")


async def test_logged_in_names_the_server_or_none(idp: Idp, secrets: None) -> None:
    client = tessera.AuthClient.from_toml(headers_config(idp), registry=headers_registry({}))
    assert await client.logged_in("peer") is None, "not logged in yet"
    assert await client.logged_in("search") is None and await client.logged_in("bare") is None
    assert await client.logged_in("catalog") == "https://catalog.example", "the url of its auth_context()"
    assert await client.logged_in() == "https://catalog.example", "the first authenticated provider"
    assert await client.login("peer") == {"peer": True}
    assert await client.logged_in("peer") == idp.issuer
    assert await client.logged_in() == idp.issuer, "configuration order: peer comes first"
    assert client.sync.logged_in("peer") == idp.issuer
    assert await client.logged_in("nope") is None
    await client.logout("peer")
    assert client.sync.logged_in("peer") is None
