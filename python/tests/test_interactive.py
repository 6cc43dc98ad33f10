"""Interactive grants through the public API against the reference IdP (`tessera idp serve`):
email one-time codes and Cognito CUSTOM_AUTH answered by an ``otp_callback`` (sync and async,
wrong code then right), and browser logins signed in by headless Chromium
(interop/browser/sign-in.mjs), with a loopback receiver and in paste mode."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import List, Optional

import pytest

import tessera

from conftest import ROOT, Idp

ALICE_EMAIL = "alice@example.com"
BROWSER_CLIENT_ID = "tessera-cli"
COGNITO_CLIENT_ID = "cognitopublicclient000001"
SIGN_IN_TIMEOUT_S = 90


def otp_client(idp: Idp, sync: bool = False, **kwargs: object) -> object:
    cls = tessera.SyncClient if sync else tessera.Client
    return cls(idp.issuer, client_id=BROWSER_CLIENT_ID, grant=tessera.EmailOtp(ALICE_EMAIL), **kwargs)  # type: ignore[arg-type]


def test_email_otp_sync_callback_wrong_code_then_right_then_refresh(idp: Idp, tmp_path: Path) -> None:
    prompts: List[tessera.CodePrompt] = []

    def otp_callback(prompt: tessera.CodePrompt) -> str:
        prompts.append(prompt)
        return "000000" if prompt.attempt == 1 else idp.last_code(ALICE_EMAIL)

    store = tessera.FileStore(tmp_path / "tokens")
    mailed_before = len(idp.outbox(ALICE_EMAIL))  # the outbox outlives /_test/reset
    with tessera.SyncClient(
        idp.issuer, client_id=BROWSER_CLIENT_ID, grant=tessera.EmailOtp(ALICE_EMAIL), store=store,
        otp_callback=otp_callback,
    ) as client:
        tokens = client.login()
        assert tokens.refresh_token is not None
        assert [p.attempt for p in prompts] == [1, 2]
        assert prompts[0].channel == "email" and prompts[0].previous_error is None
        assert prompts[1].previous_error, "the second ask says why the first code was refused"
        assert prompts[0].destination and "***" in prompts[0].destination, prompts[0].destination
        assert len(idp.outbox(ALICE_EMAIL)) == mailed_before + 1, "one code per login, however many tries"
        header = client.force_refresh()
        assert header.startswith("Bearer ") and header != "Bearer " + tokens.access_token
        assert len(idp.outbox(ALICE_EMAIL)) == mailed_before + 1, "a refresh mails no code"
    # Another process reads the stored tokens without logging in.
    with tessera.SyncClient(
        idp.issuer, client_id=BROWSER_CLIENT_ID, grant=tessera.EmailOtp(ALICE_EMAIL), store=store
    ) as again:
        assert again.authorization_header() == header


def test_email_otp_async_callback_given_to_login(idp: Idp) -> None:
    asked: List[int] = []

    async def otp_callback(prompt: tessera.CodePrompt) -> str:
        asked.append(prompt.attempt)
        await asyncio.sleep(0)
        code = await asyncio.get_running_loop().run_in_executor(None, idp.last_code, ALICE_EMAIL)
        return "999999" if prompt.attempt == 1 else code

    async def main() -> str:
        async with otp_client(idp) as client:  # type: ignore[attr-defined]
            tokens = await client.login(otp_callback=otp_callback)
            return str(tokens.access_token)

    token = asyncio.run(main())
    assert token and asked == [1, 2]


def test_email_otp_async_callback_from_the_sync_client(idp: Idp) -> None:
    async def otp_callback(prompt: tessera.CodePrompt) -> str:
        return idp.last_code(ALICE_EMAIL)

    with otp_client(idp, sync=True, otp_callback=otp_callback) as client:  # type: ignore[attr-defined]
        assert client.login().access_token


def test_an_exception_from_the_callback_propagates_and_no_callback_is_a_typed_error(idp: Idp) -> None:
    class GiveUp(Exception):
        pass

    def otp_callback(prompt: tessera.CodePrompt) -> str:
        raise GiveUp("no mailbox")

    with otp_client(idp, sync=True, otp_callback=otp_callback) as client:  # type: ignore[attr-defined]
        with pytest.raises(GiveUp, match="no mailbox"):
            client.login()
    mailed_before = len(idp.outbox(ALICE_EMAIL))
    with otp_client(idp, sync=True) as client:  # type: ignore[attr-defined]
        with pytest.raises(tessera.ReauthenticationRequired, match="otp_callback"):
            client.login()
        assert len(idp.outbox(ALICE_EMAIL)) == mailed_before, "no code mailed that nobody would enter"
        # A silent header never starts an interactive login.
        with pytest.raises(tessera.ReauthenticationRequired):
            client.authorization_header()


def revoke_alices_refresh_tokens(idp: Idp) -> None:
    import urllib.request

    request = urllib.request.Request(
        idp.url("/_test/revoke_user"), data=json.dumps({"username": "alice"}).encode(), method="POST",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def test_with_an_otp_callback_a_header_reuses_then_refreshes_then_mails_a_code(idp: Idp) -> None:
    # quilt_hp's order, the documented default: a stored token is reused, an expired one refreshed
    # silently, and only when no token can be had without the person is a code mailed and asked for.
    asked: List[int] = []

    def otp_callback(prompt: tessera.CodePrompt) -> str:
        asked.append(prompt.attempt)
        return idp.last_code(ALICE_EMAIL)

    idp.access_token_ttl(2)
    store = tessera.MemoryStore()
    mailed = len(idp.outbox(ALICE_EMAIL))
    with otp_client(idp, sync=True, otp_callback=otp_callback, store=store, refresh_skew=0.5) as client:  # type: ignore[attr-defined]
        # No token at all: authorization_header() logs in, mailing one code.
        first = client.authorization_header()
        assert asked == [1] and len(idp.outbox(ALICE_EMAIL)) == mailed + 1
        # Reuse: no request, no code.
        requests = idp.stats()["token_requests"]
        assert client.authorization_header() == first and idp.stats()["token_requests"] == requests
        # Expired access token, live refresh token: a silent refresh, no code.
        time.sleep(2.1)
        second = client.authorization_header()
        assert second != first and idp.stats()["refresh_grants"] == 1
        assert asked == [1] and len(idp.outbox(ALICE_EMAIL)) == mailed + 1, "a refresh mails no code"
        # The refresh token revoked: the default policy logs in again, mailing a new code.
        revoke_alices_refresh_tokens(idp)
        client.force_refresh()
        assert asked == [1, 1] and len(idp.outbox(ALICE_EMAIL)) == mailed + 2


def test_a_daemon_opts_out_with_raise_and_no_code_is_ever_mailed(idp: Idp) -> None:
    asked: List[int] = []

    def otp_callback(prompt: tessera.CodePrompt) -> str:
        asked.append(prompt.attempt)
        return idp.last_code(ALICE_EMAIL)

    raise_ = tessera.RefreshFailureAction.RAISE
    store = tessera.MemoryStore()
    mailed = len(idp.outbox(ALICE_EMAIL))
    with otp_client(idp, sync=True, otp_callback=otp_callback, refresh_policy=raise_, store=store) as client:  # type: ignore[attr-defined]
        # No token: RAISE, before anything is sent.
        with pytest.raises(tessera.ReauthenticationRequired):
            client.authorization_header()
        assert asked == [] and len(idp.outbox(ALICE_EMAIL)) == mailed and idp.stats()["token_requests"] == 0
        # An explicit login() still mails a code and asks (the policy is not consulted for it).
        client.login()
        assert asked == [1] and len(idp.outbox(ALICE_EMAIL)) == mailed + 1
        # A rejected refresh: RAISE again, no code.
        revoke_alices_refresh_tokens(idp)
        with pytest.raises(tessera.ReauthenticationRequired):
            client.force_refresh()
        assert asked == [1] and len(idp.outbox(ALICE_EMAIL)) == mailed + 1


async def test_async_client_with_an_otp_callback_logs_in_from_the_header(idp: Idp) -> None:
    async def otp_callback(prompt: tessera.CodePrompt) -> str:
        return await asyncio.get_running_loop().run_in_executor(None, idp.last_code, ALICE_EMAIL)

    mailed = len(idp.outbox(ALICE_EMAIL))
    async with otp_client(idp, otp_callback=otp_callback) as client:  # type: ignore[attr-defined]
        header = await client.authorization_header()
        assert header.startswith("Bearer ") and len(idp.outbox(ALICE_EMAIL)) == mailed + 1


def test_wrong_codes_until_no_attempts_are_left_is_a_typed_error(idp: Idp) -> None:
    asked: List[int] = []

    def otp_callback(prompt: tessera.CodePrompt) -> str:
        asked.append(prompt.attempt)
        return "000000"

    grant = tessera.EmailOtp(ALICE_EMAIL, max_attempts=2)
    with tessera.SyncClient(idp.issuer, client_id=BROWSER_CLIENT_ID, grant=grant, otp_callback=otp_callback) as client:
        with pytest.raises(tessera.AuthenticationError) as raised:
            client.login()
    assert asked == [1, 2]
    assert "000000" not in str(raised.value)


def test_bad_arguments_are_typed_errors() -> None:
    with pytest.raises(tessera.ConfigurationError, match="max_attempts"):
        tessera.EmailOtp(ALICE_EMAIL, max_attempts=0)
    with pytest.raises(tessera.ConfigurationError, match="email"):
        tessera.EmailOtp(" ")
    with pytest.raises(tessera.ConfigurationError, match="needs a password"):
        tessera.Cognito("http://127.0.0.1:1/", "alice")
    with pytest.raises(tessera.ConfigurationError, match="auth_flow"):
        tessera.Cognito("http://127.0.0.1:1/", "alice", auth_flow="srp")  # type: ignore[arg-type]
    with pytest.raises(tessera.ConfigurationError, match="callback_path"):
        tessera.Browser(callback_path="callback")
    with pytest.raises(tessera.ConfigurationError, match="authorization_params"):
        tessera.Browser(extra_params=[("prompt",)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="otp_callback"):
        tessera.SyncClient("http://127.0.0.1:1", client_id="x", otp_callback="123456")  # type: ignore[arg-type]
    cognito = tessera.Cognito("http://127.0.0.1:1/", "alice", "s3cret-pw", totp_secret="JBSWY3DPEHPK3PXP")
    assert "s3cret-pw" not in repr(cognito) and "JBSWY3DPEHPK3PXP" not in repr(cognito)
    assert cognito.auth_flow == "user_password" and cognito.name == "cognito"


def test_cognito_custom_auth_at_the_reference_idp(idp: Idp) -> None:
    prompts: List[tessera.CodePrompt] = []

    def otp_callback(prompt: tessera.CodePrompt) -> str:
        prompts.append(prompt)
        return "123123" if prompt.attempt == 1 else idp.last_code(ALICE_EMAIL)

    grant = tessera.Cognito(idp.url("/cognito"), "alice", auth_flow="custom")
    with tessera.SyncClient(
        client_id=COGNITO_CLIENT_ID, token_url=idp.url("/cognito"), grant=grant, otp_callback=otp_callback
    ) as client:
        tokens = client.login()
        assert tokens.refresh_token is not None and tokens.access_token
        assert [p.attempt for p in prompts] == [1, 2] and prompts[1].previous_error
        assert client.force_refresh() != "Bearer " + tokens.access_token


# --- Browser logins: headless Chromium plays the person -----------------------------------------


def _browser_dir() -> Path:
    return ROOT / "interop" / "browser"


def _require_chromium() -> str:
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    node = os.environ.get("NODE") or shutil.which("node")
    ready = node and Path(chromium).is_file() and (_browser_dir() / "node_modules" / "playwright-core").is_dir()
    if not ready:
        if os.environ.get("CI"):
            pytest.fail("browser tests need chromium, node and `npm ci` in interop/browser")
        pytest.skip("chromium, node or interop/browser/node_modules missing")
    return str(node)


def sign_in(url: str, username: str, password: str, *flags: str) -> dict:
    """Runs sign-in.mjs to the end; its last stdout line (JSON) plus the exit status."""
    node = _require_chromium()
    done = subprocess.run(
        [node, "sign-in.mjs", url, username, password, *flags],
        cwd=_browser_dir(), capture_output=True, text=True, timeout=SIGN_IN_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )
    lines = done.stdout.strip().splitlines()
    result = dict(json.loads(lines[-1])) if lines else {}
    result["ok"] = done.returncode == 0
    result["stderr"] = done.stderr
    return result


class ChromiumPrompter:
    """Opens each BrowserPrompt in headless Chromium: in a thread when shown (the loopback receiver
    gets the redirect), to the end when asked (paste mode: returns the URL the browser ended on)."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.prompts: List[tessera.BrowserPrompt] = []
        self.runs: List[dict] = []
        self.threads: List[threading.Thread] = []

    def __call__(self, prompt: tessera.BrowserPrompt) -> Optional[str]:
        self.prompts.append(prompt)
        if prompt.expects_answer:
            run = sign_in(prompt.authorization_url, self.username, self.password, "--no-listener")
            self.runs.append(run)
            return str(run["callback"])
        thread = threading.Thread(
            target=lambda: self.runs.append(sign_in(prompt.authorization_url, self.username, self.password)),
            daemon=True,
        )
        thread.start()
        self.threads.append(thread)
        return None

    def finished(self) -> List[dict]:
        for thread in self.threads:
            thread.join(SIGN_IN_TIMEOUT_S)
        return self.runs


def test_browser_login_with_a_loopback_receiver_then_refresh(idp: Idp, tmp_path: Path) -> None:
    _require_chromium()
    prompter = ChromiumPrompter("alice", "alice-password")
    store = tessera.FileStore(tmp_path / "tokens")

    async def main() -> tuple:
        async with tessera.Client(
            idp.issuer, client_id=BROWSER_CLIENT_ID, grant=tessera.Browser(timeout=120), scope="openid",
            store=store, prompter=prompter, key="idp/alice",
        ) as client:
            tokens = await client.login()
            refreshed = await client.force_refresh()
            return tokens, refreshed

    tokens, refreshed = asyncio.run(main())
    runs = prompter.finished()
    assert len(runs) == 1 and runs[0]["ok"], runs
    assert runs[0]["message"] == "Signed in to idp/alice. You can close this tab."
    prompt = prompter.prompts[0]
    assert not prompt.expects_answer and prompt.redirect_uri.startswith("http://127.0.0.1:")
    assert "code_challenge_method=S256" in prompt.authorization_url
    assert tokens.id_token and tokens.refresh_token
    assert refreshed != "Bearer " + tokens.access_token
    stats = idp.stats()
    assert stats["authorization_code_grants"] == 1 and stats["refresh_grants"] == 1, stats


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_browser_login_in_paste_mode_with_extra_params(idp: Idp) -> None:
    _require_chromium()
    prompter = ChromiumPrompter("alice", "alice-password")
    redirect_uri = f"http://127.0.0.1:{_unused_port()}/callback"
    grant = tessera.Browser(redirect_uri=redirect_uri, extra_params={"login_hint": "alice"})
    assert grant.redirect_uri == redirect_uri and grant.authorization_url is None
    with tessera.SyncClient(
        idp.issuer, client_id=BROWSER_CLIENT_ID, grant=grant, scope="openid", prompter=prompter
    ) as client:
        tokens = client.login()
    assert tokens.access_token and prompter.runs[0]["ok"], prompter.runs
    prompt = prompter.prompts[0]
    assert prompt.expects_answer and prompt.redirect_uri == redirect_uri
    assert "login_hint=alice" in prompt.authorization_url
    assert idp.stats()["authorization_code_grants"] == 1


def test_browser_login_without_a_prompter_is_a_typed_error(idp: Idp) -> None:
    with tessera.SyncClient(idp.issuer, client_id=BROWSER_CLIENT_ID, grant=tessera.Browser()) as client:
        with pytest.raises(tessera.ReauthenticationRequired, match="prompter"):
            client.login()


def test_codes_tokens_and_keys_never_reach_logs_or_reprs(idp: Idp, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="tessera")
    codes: List[str] = []
    prompts: List[tessera.CodePrompt] = []

    def otp_callback(prompt: tessera.CodePrompt) -> str:
        prompts.append(prompt)
        codes.append("424242" if prompt.attempt == 1 else idp.last_code(ALICE_EMAIL))
        return codes[-1]

    with otp_client(idp, sync=True, otp_callback=otp_callback) as client:  # type: ignore[attr-defined]
        tokens = client.login()
        text = "\n".join(r.getMessage() for r in caplog.records) + repr(client) + repr(tokens)
        text += "".join(repr(p) for p in prompts)
    assert caplog.records, "the login left records"
    for secret in [*codes, tokens.access_token, str(tokens.refresh_token)]:
        assert secret not in text, secret


def test_cognito_password_then_emailed_code_with_a_secret_hash_and_logout(idp: Idp) -> None:
    carol_email = "carol@example.com"
    prompts: List[tessera.CodePrompt] = []

    async def otp_callback(prompt: tessera.CodePrompt) -> str:
        prompts.append(prompt)
        return idp.last_code(carol_email)

    grant = tessera.Cognito(idp.url("/cognito"), "carol", "carol-password")
    with tessera.SyncClient(
        client_id="cognitosecretclient000002", client_secret="cognito-client-secret", client_auth="post",
        token_url=idp.url("/cognito"), grant=grant, otp_callback=otp_callback,
    ) as client:
        tokens = client.login()
        assert [(p.channel, p.destination, p.attempt) for p in prompts] == [("email", "c***@e***", 1)]
        assert client.force_refresh() != "Bearer " + tokens.access_token
        assert client.logout().revoked
    with tessera.SyncClient(
        client_id="cognitosecretclient000002", client_secret="not-the-secret", client_auth="post",
        token_url=idp.url("/cognito"), grant=grant, otp_callback=otp_callback,
    ) as bad:
        with pytest.raises(tessera.AuthenticationError, match="secret hash") as raised:
            bad.login()
    assert raised.value.code == "invalid_grant" and "not-the-secret" not in str(raised.value)


def test_a_cognito_pool_asking_for_a_code_without_a_callback_mails_one_code_then_nothing_until_a_login(
    idp: Idp,
) -> None:
    """A Cognito password grant logs in without a person until the pool mails a code: without an
    ``otp_callback`` the call fails with ReauthenticationRequired after one InitiateAuth, the refresh
    policy does not run the login again (it used to mail a second code every call), and later calls
    get the same error without sending anything (one code in all) until a login that can answer."""
    carol_email = "carol@example.com"
    grant = tessera.Cognito(idp.url("/cognito"), "carol", "carol-password")
    with tessera.SyncClient(client_id=COGNITO_CLIENT_ID, token_endpoint=idp.url("/cognito"), grant=grant) as client:
        mailed_before = len(idp.outbox(carol_email))
        requests_before = idp.stats()["cognito_requests"]
        for call in range(1, 4):
            with pytest.raises(tessera.ReauthenticationRequired, match="otp_callback"):
                client.authorization_header()
            assert len(idp.outbox(carol_email)) == mailed_before + 1, f"call {call}: one code mailed in all"
            assert idp.stats()["cognito_requests"] == requests_before + 1, f"call {call}: one InitiateAuth in all"
        assert client.login(otp_callback=lambda prompt: idp.last_code(carol_email)).access_token
        assert client.authorization_header().startswith("Bearer ")


def test_each_grant_needs_its_own_callback_and_fails_before_sending(idp: Idp) -> None:
    before = idp.stats()["token_requests"]
    mailed_before = len(idp.outbox(ALICE_EMAIL))

    def otp_callback(prompt: tessera.CodePrompt) -> str:
        return "123456"

    def prompter(prompt: object) -> None:
        return None

    # A browser login cannot be answered with codes, an email login not by a prompter alone.
    with tessera.SyncClient(idp.issuer, client_id=BROWSER_CLIENT_ID, grant=tessera.Browser(), otp_callback=otp_callback) as c:
        with pytest.raises(tessera.ReauthenticationRequired, match="no prompter"):
            c.login(otp_callback=otp_callback)
    with otp_client(idp, sync=True, prompter=prompter) as c:  # type: ignore[attr-defined]
        with pytest.raises(tessera.ReauthenticationRequired, match="no otp_callback"):
            c.login()
    assert len(idp.outbox(ALICE_EMAIL)) == mailed_before and idp.stats()["token_requests"] == before


def test_a_cognito_pool_asking_for_a_code_is_answered_by_the_logins_callback(idp: Idp) -> None:
    grant = tessera.Cognito(idp.url("/cognito"), "carol", "carol-password")
    with tessera.SyncClient(client_id="cognitopublicclient000001", token_url=idp.url("/cognito"), grant=grant) as c:
        assert c.login(otp_callback=lambda prompt: idp.last_code("carol@example.com")).access_token
        # Without any callback, the pool's EMAIL_OTP challenge ends the login with a typed error.
        with pytest.raises(tessera.ReauthenticationRequired, match="otp_callback"):
            c.login()


def test_a_refresh_token_client_still_logs_in_without_callbacks(idp: Idp) -> None:
    seed = tessera.SyncClient(idp.issuer, **idp.client_kwargs()).tokens().refresh_token
    assert seed
    with tessera.SyncClient(
        idp.issuer, client_id="confidential-client", client_secret="confidential-secret",
        grant=tessera.RefreshToken(seed),
    ) as c:
        assert c.login().access_token


def test_concurrent_logins_keep_their_own_callbacks(idp: Idp) -> None:
    seen: List[str] = []
    mailed_before = len(idp.outbox(ALICE_EMAIL))

    def candidate(attempt: int) -> str:
        # Both logins mail a code to the same address: try the newest first, then the one before.
        codes = [m["code"] for m in idp.outbox(ALICE_EMAIL)[mailed_before:]]
        return str(codes[-min(attempt, len(codes))])

    def answering(name: str) -> "object":
        async def otp_callback(prompt: tessera.CodePrompt) -> str:
            seen.append(name)
            await asyncio.sleep(0.05)
            return await asyncio.get_running_loop().run_in_executor(None, candidate, prompt.attempt)

        return otp_callback

    async def main() -> None:
        async with otp_client(idp) as client:  # type: ignore[attr-defined]
            first = asyncio.ensure_future(client.login(otp_callback=answering("first")))
            await asyncio.sleep(0)
            second = asyncio.ensure_future(client.login(otp_callback=answering("second")))
            await asyncio.gather(first, second)
            # A plain login afterwards has no callback left over from either.
            with pytest.raises(tessera.ReauthenticationRequired):
                await client.login()

    asyncio.run(main())
    # Explicit logins never share a result: each asked its own callback (in whichever order the
    # single-flight gate let them run).
    assert set(seen) == {"first", "second"}, seen


def _call(url: str, authorization: str) -> tuple:
    """What the resource at ``url`` answers to ``authorization``: status and audience."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"authorization": authorization})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())["aud"]
    except urllib.error.HTTPError as error:
        return error.code, None


def test_client_for_resource_registers_logs_in_and_one_login_serves_both_demo_resources(idp: Idp, tmp_path: Path) -> None:
    _require_chromium()
    prompter = ChromiumPrompter("alice", "alice-password")
    store = tessera.FileStore(tmp_path / "tokens")
    first, second = idp.url("/api/resource"), idp.url("/api/files")
    before = idp.stats()

    async def main() -> str:
        client = await tessera.Client.for_resource(first, store=store, key="demo", prompter=prompter)
        await client.login()
        return await client.authorization_header()

    header = asyncio.run(main())
    runs = prompter.finished()
    assert len(runs) == 1 and runs[0]["ok"], runs
    assert "resource=" in prompter.prompts[0].authorization_url
    assert _call(first, header) == (200, first)
    assert _call(second, header)[0] == 401

    # Another resource of the same server, in a sync client over the same store: no login.
    files = tessera.SyncClient.for_resource(second, store=store, key="demo")
    files_header = files.authorization_header()
    assert _call(second, files_header) == (200, second)
    after = idp.stats()
    assert after["client_registrations"] - before["client_registrations"] == 1, "registered once"
    assert after["authorization_code_grants"] - before["authorization_code_grants"] == 1
    assert after["refresh_grants"] - before["refresh_grants"] == 1


def test_for_resource_refuses_bad_urls_with_typed_errors() -> None:
    with pytest.raises(tessera.ConfigurationError):
        tessera.SyncClient.for_resource("http://api.example.com/")  # plain http off loopback
    with pytest.raises(tessera.ConfigurationError):
        tessera.SyncClient.for_resource("not a url")
    with pytest.raises(TypeError):
        tessera.SyncClient.for_resource("https://api.example.com/", prompter=42)  # type: ignore[arg-type]


def test_adapters_step_up_on_insufficient_scope_and_without_a_person_raise_the_typed_error(idp: Idp, tmp_path: Path) -> None:
    """The demo resource answers 403 ``insufficient_scope`` (``scope="api:read"``) to a token without it."""
    import httpx
    import requests

    import tessera.httpx
    import tessera.requests

    _require_chromium()
    prompter = ChromiumPrompter("alice", "alice-password")
    store = tessera.FileStore(tmp_path / "tokens")
    resource = idp.url("/api/resource")
    client = tessera.SyncClient.for_resource(resource, store=store, key="demo", scope="openid", prompter=prompter)
    client.login()
    before = idp.stats()["authorization_code_grants"]

    nobody = tessera.SyncClient.for_resource(resource, store=store, key="demo", scope="openid")
    with requests.Session() as http:
        http.auth = tessera.requests.Auth(nobody)
        with pytest.raises(tessera.AuthenticationError) as raised:
            http.get(resource, timeout=10)
    assert raised.value.code == "insufficient_scope" and "api:read" in str(raised.value), raised.value
    assert idp.stats()["authorization_code_grants"] == before, "no login nobody can finish"

    with httpx.Client(auth=tessera.httpx.Auth(client)) as http:
        answer = http.get(resource)
        assert answer.status_code == 200, answer.text
        assert http.get(resource).status_code == 200
    assert idp.stats()["authorization_code_grants"] == before + 1, "one step-up login"
    assert "scope=openid+api%3Aread" in prompter.prompts[-1].authorization_url, prompter.prompts[-1].authorization_url


def test_for_resource_in_paste_mode_registers_the_fixed_redirect_uri(idp: Idp) -> None:
    _require_chromium()
    prompter = ChromiumPrompter("alice", "alice-password")
    fixed = f"http://127.0.0.1:{_unused_port()}/pasted"
    resource = idp.url("/api/resource")
    client = tessera.SyncClient.for_resource(resource, redirect_uri=fixed, prompter=prompter)
    client.login()
    assert prompter.prompts[0].expects_answer and prompter.prompts[0].redirect_uri == fixed
    assert _call(resource, client.authorization_header()) == (200, resource)
