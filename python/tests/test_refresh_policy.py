"""Device-code login with a Python prompter, the refresh policy and refresh hooks.

- Against panva's oidc-provider (device authorization grant): a person logs in once (the test
  approves the code over HTTP, as a browser would) into a shared store; the grant is then revoked
  at the server. A daemon with `RefreshFailureAction.RAISE` gets `ReauthenticationRequired` after
  one refresh attempt and never prompts; with `REAUTHENTICATE` the login runs once more (one
  prompt) and the session recovers. Hooks see each step's reason/source/attempt.
- Against the reference IdP: hooks and policies that raise surface their own exception,
  `retry_after` retries, async hooks and policies are awaited on the caller's loop.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timezone
from typing import List, Optional, Tuple

import pytest

import tessera
from conftest import ALICE, CLIENT_ID, CLIENT_SECRET, Idp, OidcProvider
from oidc_browser import DEVICE_CLIENT_ID, approve_device, deny_device, revoke_grant

TIMEOUT_S = 30
SCOPE = "openid offline_access api:read"
RAISE = tessera.RefreshFailureAction.RAISE
REAUTHENTICATE = tessera.RefreshFailureAction.REAUTHENTICATE


class ApprovingPrompter:
    """A person: sees each prompt, and approves its code from another 'device' (a thread)."""

    def __init__(self, op: OidcProvider) -> None:
        self.op = op
        self.prompts: List[tessera.DeviceCodePrompt] = []
        self.approvals: List[threading.Thread] = []

    def __call__(self, prompt: tessera.DeviceCodePrompt) -> None:
        self.prompts.append(prompt)
        approval = threading.Thread(target=approve_device, args=(prompt.verification_uri, prompt.user_code))
        approval.start()
        self.approvals.append(approval)

    def join(self) -> None:
        for approval in self.approvals:
            approval.join(TIMEOUT_S)


class AsyncApprovingPrompter(ApprovingPrompter):
    """The same person behind an `async def` prompter: awaited on the caller's event loop."""

    def __init__(self, op: OidcProvider) -> None:
        super().__init__(op)
        self.loops: List[Optional[asyncio.AbstractEventLoop]] = []

    async def __call__(self, prompt: tessera.DeviceCodePrompt) -> None:  # type: ignore[override]
        self.loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        super().__call__(prompt)


class NobodyPrompter:
    """A daemon's prompter: nobody is there. It must never be called."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, prompt: tessera.DeviceCodePrompt) -> None:
        self.calls += 1


Seen = Tuple[str, str, str, int, Optional[str]]


class Recorder:
    """Hooks recording (event, reason, source, attempt, error class)."""

    def __init__(self) -> None:
        self.seen: List[Seen] = []

    def on_refresh_start(self, context: tessera.RefreshContext) -> None:
        self.seen.append(("start", context.reason, context.source, context.attempt, None))

    def on_refresh_success(self, context: tessera.RefreshContext, tokens: tessera.TokenSet) -> None:
        assert tokens.access_token
        self.seen.append(("success", context.reason, context.source, context.attempt, None))

    def on_refresh_failure(self, context: tessera.RefreshContext, error: Exception) -> None:
        self.seen.append(("failure", context.reason, context.source, context.attempt, type(error).__name__))


def device_client(op: OidcProvider, store: tessera.MemoryStore, **kwargs: object) -> tessera.Client:
    return tessera.Client(
        op.issuer, client_id=DEVICE_CLIENT_ID, grant=tessera.DeviceCode(), scope=SCOPE, store=store, key="device",
        **kwargs,  # type: ignore[arg-type]
    )


def test_device_code_login_with_a_sync_prompter(oidc_provider: OidcProvider) -> None:
    person = ApprovingPrompter(oidc_provider)
    store = tessera.MemoryStore()
    client = device_client(oidc_provider, store, prompter=person).sync
    tokens = client.login()
    person.join()
    assert tokens.access_token and tokens.refresh_token
    assert store.load("device") == tokens
    [prompt] = person.prompts
    assert prompt.key == "device" and len(prompt.user_code) >= 8
    assert prompt.verification_uri == oidc_provider.verification_uri
    assert prompt.verification_uri_complete is not None and "user_code=" in prompt.verification_uri_complete
    assert prompt.expires_at > datetime.now(timezone.utc)
    assert "user_code=" in repr(prompt) or prompt.user_code in repr(prompt)
    assert oidc_provider.stats()["device_authorizations"] == 1
    assert client.authorization_header() == "Bearer " + tokens.access_token


async def test_device_code_login_with_an_async_prompter(oidc_provider: OidcProvider) -> None:
    person = AsyncApprovingPrompter(oidc_provider)
    client = device_client(oidc_provider, tessera.MemoryStore(), prompter=person)
    tokens = await asyncio.wait_for(client.login(), TIMEOUT_S)
    person.join()
    assert tokens.refresh_token
    assert person.loops == [asyncio.get_running_loop()], "the async prompter ran on the caller's loop"


async def test_device_code_without_a_prompter_asks_nobody(oidc_provider: OidcProvider) -> None:
    client = device_client(oidc_provider, tessera.MemoryStore())
    with pytest.raises(tessera.ReauthenticationRequired):
        await client.login()
    assert oidc_provider.stats()["device_authorizations"] == 0, "no code requested that nobody would enter"


def test_a_prompter_that_raises_aborts_the_login(oidc_provider: OidcProvider) -> None:
    class Closed(Exception):
        pass

    def closed(prompt: tessera.DeviceCodePrompt) -> None:
        raise Closed(prompt.user_code)

    client = device_client(oidc_provider, tessera.MemoryStore(), prompter=closed).sync
    with pytest.raises(Closed):
        client.login()


def test_a_person_who_denies_gives_access_denied(oidc_provider: OidcProvider) -> None:
    denials: List[threading.Thread] = []

    def deny(prompt: tessera.DeviceCodePrompt) -> None:
        denial = threading.Thread(target=deny_device, args=(prompt.verification_uri, prompt.user_code))
        denial.start()
        denials.append(denial)

    client = device_client(oidc_provider, tessera.MemoryStore(), prompter=deny).sync
    with pytest.raises(tessera.AuthenticationError) as failure:
        client.login()
    for denial in denials:
        denial.join(TIMEOUT_S)
    assert failure.value.code == "access_denied" and len(denials) == 1


def test_async_hooks_from_the_sync_client_run_under_asyncio_run(idp: Idp) -> None:
    seen: List[Tuple[str, bool]] = []

    class AsyncHooks:
        async def on_refresh_start(self, context: tessera.RefreshContext) -> None:
            await asyncio.sleep(0)
            seen.append((context.reason, threading.current_thread() is threading.main_thread()))

    client = tessera.SyncClient(idp.issuer, hooks=AsyncHooks(), **idp.client_kwargs())
    client.login()
    assert seen == [("login", True)], "run by asyncio.run on the calling thread while it waits"


def person_logs_in(op: OidcProvider, store: tessera.MemoryStore) -> tessera.TokenSet:
    """A person runs the device login once on the machine; the tokens land in the shared store."""
    person = ApprovingPrompter(op)
    tokens = device_client(op, store, prompter=person).sync.login()
    person.join()
    assert tokens.refresh_token
    return tokens


def test_daemon_with_raise_fails_after_one_refresh_attempt_and_never_prompts(oidc_provider: OidcProvider) -> None:
    store = tessera.MemoryStore()
    seeded = person_logs_in(oidc_provider, store)
    nobody, hooks = NobodyPrompter(), Recorder()
    daemon = device_client(oidc_provider, store, prompter=nobody, refresh_policy=RAISE, hooks=hooks).sync
    assert daemon.authorization_header() == "Bearer " + seeded.access_token, "the daemon adopts the stored login"
    assert hooks.seen == [("start", "startup", "network", 1, None), ("success", "startup", "store", 1, None)]
    hooks.seen.clear()
    revoke_grant(oidc_provider.issuer, seeded.refresh_token or "")
    refreshes_before = oidc_provider.grant_type("refresh_token")
    # The daemon's loop: a header per job; the API answers 401 (grant revoked) -> one forced refresh.
    failures: List[Exception] = []
    for _job in range(3):
        try:
            daemon.authorization_header()
            daemon.force_refresh()  # the API said 401
        except tessera.ReauthenticationRequired as error:
            failures.append(error)
            break
    assert len(failures) == 1 and failures[0].kind == "reauthentication_required"
    assert oidc_provider.grant_type("refresh_token") == refreshes_before + 1, "exactly one refresh attempt"
    assert oidc_provider.stats()["device_authorizations"] == 1, "no new device code requested"
    assert nobody.calls == 0, "the daemon never prompted"
    assert hooks.seen == [
        ("start", "forced", "network", 1, None),
        ("failure", "forced", "network", 1, "ReauthenticationRequired"),
    ]


async def test_reauthenticate_logs_in_once_more_and_recovers(oidc_provider: OidcProvider) -> None:
    store = tessera.MemoryStore()
    seeded = person_logs_in(oidc_provider, store)
    decisions: List[Tuple[tessera.RefreshContext, str]] = []

    class Policy:
        async def on_refresh_failure(self, context: tessera.RefreshContext, error: Exception) -> tessera.RefreshFailureAction:
            decisions.append((context, type(error).__name__))
            return REAUTHENTICATE

    person, hooks = AsyncApprovingPrompter(oidc_provider), Recorder()
    client = device_client(oidc_provider, store, prompter=person, refresh_policy=Policy(), hooks=hooks)
    assert await client.authorization_header() == "Bearer " + seeded.access_token
    hooks.seen.clear()
    revoke_grant(oidc_provider.issuer, seeded.refresh_token or "")
    header = await asyncio.wait_for(client.force_refresh(), TIMEOUT_S)
    person.join()
    assert header != "Bearer " + seeded.access_token
    assert len(person.prompts) == 1, "one prompt for the one reauthentication"
    assert oidc_provider.stats()["device_authorizations"] == 2
    [(context, error_name)] = decisions
    assert (context.key, context.reason, context.source, context.attempt) == ("device", "forced", "network", 1)
    assert error_name == "ReauthenticationRequired"
    assert hooks.seen == [
        ("start", "forced", "network", 1, None),
        ("failure", "forced", "network", 1, "ReauthenticationRequired"),
        ("start", "forced", "login", 2, None),
        ("success", "forced", "login", 2, None),
    ]
    assert store.load("device") is not None and (await client.tokens()).refresh_token != seeded.refresh_token


# --- reference IdP ---------------------------------------------------------------------------


def refresh_token_client(idp: Idp, **kwargs: object) -> tessera.Client:
    """A client started from alice's refresh token (its login needs a person: not unattended)."""
    seeded = tessera.SyncClient(idp.issuer, **idp.client_kwargs()).tokens()
    assert seeded.refresh_token
    return tessera.Client(
        idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        grant=tessera.RefreshToken(seeded.refresh_token), key="rt", **kwargs,  # type: ignore[arg-type]
    )


def revoke_alice(idp: Idp) -> None:
    import json
    import urllib.request

    request = urllib.request.Request(
        idp.url("/_test/revoke_user"), data=json.dumps({"username": ALICE[0]}).encode(), method="POST",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


async def test_async_hooks_see_login_and_forced_refresh(idp: Idp) -> None:
    seen: List[Seen] = []
    loops: List[asyncio.AbstractEventLoop] = []

    class AsyncHooks:
        async def on_refresh_start(self, context: tessera.RefreshContext) -> None:
            loops.append(asyncio.get_running_loop())
            seen.append(("start", context.reason, context.source, context.attempt, None))

        async def on_refresh_success(self, context: tessera.RefreshContext, tokens: tessera.TokenSet) -> None:
            seen.append(("success", context.reason, context.source, context.attempt, None))

    client = tessera.Client(idp.issuer, hooks=AsyncHooks(), key="hooked", **idp.client_kwargs())
    await client.login()
    await client.force_refresh()
    assert seen == [
        ("start", "login", "login", 1, None),
        ("success", "login", "login", 1, None),
        ("start", "forced", "network", 1, None),
        ("success", "forced", "network", 1, None),
    ]
    assert set(loops) == {asyncio.get_running_loop()}


async def test_a_hook_that_raises_fails_the_operation_with_its_exception(idp: Idp) -> None:
    class AuditDown(Exception):
        pass

    class Audit:
        def on_refresh_start(self, context: tessera.RefreshContext) -> None:
            raise AuditDown(context.reason)

    client = tessera.Client(idp.issuer, hooks=Audit(), **idp.client_kwargs())
    with pytest.raises(AuditDown, match="startup"):
        await client.authorization_header()
    assert idp.stats()["token_requests"] == 0, "nothing was sent after the hook refused"
    with pytest.raises(AuditDown):
        client.sync.authorization_header()


async def test_raise_policy_and_retry_after_against_the_reference_idp(idp: Idp) -> None:
    attempts: List[int] = []

    def policy_fn(context: tessera.RefreshContext, error: Exception) -> tessera.RefreshFailureAction:
        attempts.append(context.attempt)
        return tessera.RefreshFailureAction.retry_after(0.05) if context.attempt == 1 else RAISE

    class Policy:
        on_refresh_failure = staticmethod(policy_fn)

    client = refresh_token_client(idp, refresh_policy=Policy())
    await client.authorization_header()
    revoke_alice(idp)
    with pytest.raises(tessera.ReauthenticationRequired):
        await client.force_refresh()
    assert attempts == [1, 2], "retried once after 50 ms, then raised"


async def test_a_policy_that_raises_surfaces_its_exception(idp: Idp) -> None:
    class PagerDown(Exception):
        pass

    class Policy:
        def on_refresh_failure(self, context: tessera.RefreshContext, error: Exception) -> tessera.RefreshFailureAction:
            raise PagerDown(type(error).__name__)

    client = refresh_token_client(idp, refresh_policy=Policy())
    await client.authorization_header()
    revoke_alice(idp)
    with pytest.raises(PagerDown, match="ReauthenticationRequired"):
        await client.force_refresh()


def test_policy_and_hooks_arguments_are_checked() -> None:
    assert RAISE == tessera.RefreshFailureAction.RAISE and RAISE != REAUTHENTICATE
    later = tessera.RefreshFailureAction.retry_after(1.5)
    assert (later.kind, later.delay, RAISE.kind, RAISE.delay) == ("retry_after", 1.5, "raise", None)
    assert repr(later) == "RefreshFailureAction.retry_after(1.5)"
    with pytest.raises(tessera.ConfigurationError):
        tessera.RefreshFailureAction.retry_after(-1)
    with pytest.raises(TypeError, match="refresh_policy"):
        tessera.Client("http://127.0.0.1:1", client_id="c", refresh_policy=object())
    with pytest.raises(TypeError, match="hooks"):
        tessera.Client("http://127.0.0.1:1", client_id="c", hooks=object())
    with pytest.raises(TypeError, match="prompter"):
        tessera.Client("http://127.0.0.1:1", client_id="c", prompter="not callable")
    assert repr(tessera.DeviceCode()) == "DeviceCode(device_authorization_endpoint=None)"
    assert not tessera.DeviceCode("https://idp.example/device").unattended
