"""Type-checked by test_stubs.py (never run): how user code reads against the stubs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Dict, List, Literal, Optional

import httpx
import requests

import tessera
import tessera.httpx
import tessera.requests
from tessera.native import NativeEngine


class MyStore:
    async def load(self, key: str) -> Optional[tessera.TokenSet]:
        return None

    async def save(self, key: str, tokens: tessera.TokenSet) -> None:
        pass


async def use_async() -> str:
    async with tessera.Client(
        "https://idp.example.com",
        client_id="my-client",
        client_secret="secret",
        grant=tessera.Password("alice", "pw", totp_secret="JBSWY3DP"),
        scope=["openid", "api:read"],
        store=MyStore(),
        refresh_skew=timedelta(seconds=60),
    ) as client:
        header: str = await client.authorization_header()
        tokens: tessera.TokenSet = await client.tokens()
        valid: bool = tokens.access_valid(30) and tokens.refresh_valid(timedelta(minutes=1))
        result: tessera.LogoutResult = await client.logout()
        async with httpx.AsyncClient(auth=tessera.httpx.Auth(client)) as http:
            await http.get("https://api.example.com")
        return header if valid and result.revoked else ""


def use_sync() -> Optional[str]:
    with tessera.SyncClient(token_url="https://idp/token", client_id="c", client_secret="s", store=tessera.FileStore("/tmp/x")) as client:
        session = requests.Session()
        session.auth = tessera.requests.Auth(client)
        try:
            return client.authorization_header()
        except tessera.AuthenticationError as error:
            code: Optional[str] = error.code
            return code
        finally:
            engine = NativeEngine()
            engine.ensure("k")


class DaemonPolicy:
    def on_refresh_failure(self, context: tessera.RefreshContext, error: Exception) -> tessera.RefreshFailureAction:
        if context.attempt == 1 and context.reason == "expired":
            return tessera.RefreshFailureAction.retry_after(timedelta(seconds=2))
        return tessera.RefreshFailureAction.RAISE


class AuditHooks:
    async def on_refresh_start(self, context: tessera.RefreshContext) -> None:
        pass

    def on_refresh_success(self, context: tessera.RefreshContext, tokens: tessera.TokenSet) -> None:
        pass

    def on_refresh_failure(self, context: tessera.RefreshContext, error: Exception) -> None:
        pass


class OnlyFailures:
    async def on_refresh_failure(self, context: tessera.RefreshContext, error: Exception) -> None:
        pass


def show(prompt: tessera.DeviceCodePrompt) -> None:
    print(prompt.verification_uri_complete or prompt.verification_uri, prompt.user_code, prompt.expires_at.isoformat())


def use_policy_hooks_device_and_redis() -> tessera.TokenSet:
    store = tessera.open_store({"kind": "redis", "url": "env:REDIS_URL"})
    daemon = tessera.SyncClient(
        "https://idp", client_id="c", grant=tessera.DeviceCode(), prompter=show,
        refresh_policy=DaemonPolicy(), hooks=AuditHooks(), store=tessera.RedisStore("redis://127.0.0.1", prefix="app:"),
    )
    tessera.Client("https://idp", client_id="c", refresh_policy=tessera.RefreshFailureAction.RAISE, store=store,
                   hooks=OnlyFailures())
    return daemon.login()


class Anonymous:
    def __init__(self, settings: tessera.ProviderSettings) -> None:
        self.name = settings.name

    def is_authenticated(self) -> bool:
        return True

    async def credential(self) -> tessera.BasicCredential:
        return tessera.BasicCredential(self.name, "authenticated", auth_source="none")


async def use_registry() -> bool:
    registry = tessera.Registry()
    registry.register_factory("anonymous", Anonymous)
    client = tessera.AuthClient.from_toml("", registry=registry, context="dev")
    flags: Dict[str, bool] = await client.login()
    rows: List[tessera.ProviderInfo] = await client.list_providers()
    credential = await client.credential(rows[0].name)
    if isinstance(credential, tessera.OAuthCredential):
        token: Optional[str] = credential.access_token
    return all(flags.values()) and client.sync.is_authenticated()


def type_the_code(prompt: tessera.CodePrompt) -> str:
    return input(f"{prompt.channel} code sent to {prompt.destination} (attempt {prompt.attempt}): ")


async def code_from_mailbox(prompt: tessera.CodePrompt) -> str:
    previous: Optional[str] = prompt.previous_error
    return "123456" if previous is None else "654321"


def open_browser(prompt: tessera.BrowserPrompt) -> Optional[str]:
    return input("paste the URL: ") if prompt.expects_answer else None


async def use_interactive() -> datetime:
    with tessera.SyncClient(
        "https://idp.example.com", client_id="cli", grant=tessera.EmailOtp("a@example.com"), otp_callback=type_the_code
    ) as client:
        client.login(otp_callback=code_from_mailbox)
    cognito = tessera.Cognito("https://cognito-idp.eu-west-1.amazonaws.com/", "alice", auth_flow="custom")
    async with tessera.Client(
        client_id="app", token_url="https://cognito-idp.eu-west-1.amazonaws.com/", grant=cognito,
        otp_callback=code_from_mailbox,
    ) as aclient:
        await aclient.login()
    browser = tessera.Browser(extra_params={"prompt": "consent"}, port=8400, timeout=timedelta(minutes=2))
    with tessera.SyncClient("https://idp.example.com", client_id="cli", grant=browser, prompter=open_browser) as laptop:
        keys = tessera.SyncApiKeys(laptop, "https://idp.example.com")
        key, secret = keys.create("ci", expires_in_days=30)
        status: Literal["ACTIVE", "EXPIRED", "REVOKED"] = key.status
        listed: List[tessera.ApiKey] = keys.admin().list(email="a@example.com", status="ACTIVE")
        found: Optional[tessera.ApiKey] = await tessera.ApiKeys(laptop.aio, "https://idp.example.com").get(key.id)
    with tessera.SyncClient(grant=tessera.ApiKeyGrant(secret)) as ci:
        ci.authorization_header()
    return key.expires_at


async def use_chain(network: tessera.Client) -> str:
    chain = tessera.ChainConfig(
        tessera.Stage.http_post("https://api.example.com/discovery"),
        tessera.Stage.token_exchange(
            "https://idp.example.com/token", tessera.ClientAuth.basic("c", "s"), audience="urn:{domain_id}"
        ),
        refresh_threshold=60,
    )
    client = tessera.DomainClient(network, chain)
    access: tessera.DomainAccess = await client.get_domain_access("alpha")
    region = access.domain_server.extra.get("region")
    restored = tessera.DomainClient.from_state(client.save_state(), chain)
    await restored.set_credentials(network)
    cached: Optional[tessera.DomainAccess] = restored.cached_domain_access("alpha")
    return access.domain_server.url + str(region) + access.authorization_header


def use_login_with(engine: NativeEngine) -> int:
    return len(engine.login_with("alice", {"random_base64": "AAAA", "redirect_uri": "http://127.0.0.1:1/callback"}))
