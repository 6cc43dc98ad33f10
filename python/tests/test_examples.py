"""Each docs page's example is a file in python/examples/, included verbatim in the page (checked
here), and run here as a script against the reference IdP, oidc-provider or redis-server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Dict, List

import pytest

import tessera
from conftest import ALICE, BOB, BOB_TOTP_SECRET, CLIENT_ID, CLIENT_SECRET, ROOT, Idp, OidcProvider, Redis
from oidc_browser import DEVICE_CLIENT_ID, approve_device

EXAMPLES = ROOT / "python" / "examples"
RUN_TIMEOUT_S = 60
PAGES = {
    "python-daemon-refresh-policy.md": ["daemon_refresh_policy.py"],
    "python-logging-hooks.md": ["logging_hooks.py"],
    "python-redis-store.md": ["redis_store.py"],
    "python-provider-registry.md": ["provider_registry.py"],
    "python-device-code.md": ["device_code_login.py"],
    "python-otp-login.md": ["otp_login.py"],
    "python-browser-and-api-keys.md": ["browser_then_api_key.py"],
    "python-domain-chain.md": ["domain_chain.py"],
    "python-sans-io-httpx.md": ["sans_io_httpx.py"],
    "python-sans-io-chain.md": ["sans_io_chain.py"],
    "python-password-totp.md": ["password_totp_401.py"],
    "http-client.md": ["http_client.py"],
    "python-transport.md": ["transport_httpx.py"],
    "resource-login.md": ["resource_login.py"],
}
MARKER = re.compile(r"<!-- example: python/examples/(?P<name>[\w.]+) -->\n```python\n(?P<code>.*?)```", re.S)


@pytest.mark.parametrize("page", sorted(PAGES))
def test_each_page_includes_its_examples_verbatim(page: str) -> None:
    text = (ROOT / "docs" / page).read_text()
    included = {match["name"]: match["code"] for match in MARKER.finditer(text)}
    assert sorted(included) == sorted(PAGES[page]), f"{page} includes {sorted(included)}"
    for name, code in included.items():
        assert code == (EXAMPLES / name).read_text(), f"docs/{page}: the block of {name} differs from the file"


def run(name: str, env: Dict[str, str], timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=timeout, cwd=ROOT,
    )


def idp_env(idp: Idp) -> Dict[str, str]:
    return {"TESSERA_ISSUER": idp.issuer, "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": CLIENT_SECRET}


def seed_refresh_token(idp: Idp) -> str:
    token = tessera.SyncClient(idp.issuer, **idp.client_kwargs()).tokens().refresh_token
    assert token
    return token


def test_daemon_refresh_policy(idp: Idp, tmp_path: Path) -> None:
    idp.access_token_ttl(2)
    env = {**idp_env(idp), "JOBS": "3", "JOB_INTERVAL": "1.1"}
    done = run("daemon_refresh_policy.py", {**env, "SEED_REFRESH_TOKEN": seed_refresh_token(idp), "TOKEN_DIR": str(tmp_path / "a")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "job 2: ran as alice" in done.stdout and "refresh start: reason=startup" in done.stdout, done.stdout
    # Renewed without a person: before expiry, or (on a loaded machine, the API's 401 first) forced.
    assert re.search(r"refresh start: reason=(near_expiry|expired|forced) source=network attempt=1", done.stdout), done.stdout
    # A person's login was revoked (password change): the daemon stops at once, asking nobody.
    seed = seed_refresh_token(idp)
    request = urllib.request.Request(
        idp.url("/_test/revoke_user"), data=json.dumps({"username": ALICE[0]}).encode(), method="POST",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    before = idp.stats()["token_requests"]
    stopped = run("daemon_refresh_policy.py", {**env, "SEED_REFRESH_TOKEN": seed, "TOKEN_DIR": str(tmp_path / "b")})
    assert stopped.returncode == 4, stopped.stdout + stopped.stderr
    assert "job 0: reauthentication required" in stopped.stdout
    assert "refresh failed: ReauthenticationRequired attempt=1" in stopped.stdout
    assert idp.stats()["token_requests"] == before + 1, "one refresh attempt, then RAISE"


def test_logging_hooks(idp: Idp) -> None:
    done = run("logging_hooks.py", {**idp_env(idp), "USERNAME": ALICE[0], "PASSWORD": ALICE[1]})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split("\n")[:4] == [
        "metric start forced 1",
        "metric start startup 1",
        "metric success forced network 1",
        "metric success startup login 1",
    ], done.stdout
    assert "DEBUG tessera: token obtained and stored" in done.stderr and "reason=Forced" in done.stderr, done.stderr
    for secret in (ALICE[1], CLIENT_SECRET):
        assert secret not in done.stderr + done.stdout


def test_redis_store(idp: Idp, redis: Redis) -> None:
    done = run("redis_store.py", {**idp_env(idp), "USERNAME": ALICE[0], "PASSWORD": ALICE[1], "REDIS_URL": redis.url})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "workers: 8 distinct tokens: 1" in done.stdout
    assert "stored under: billing:tokens:billing/alice present: True" in done.stdout
    assert idp.stats()["password_grants"] == 1, "eight workers, one login"


def test_provider_registry(idp: Idp) -> None:
    env = {
        "TESSERA_ISSUER": idp.issuer, "CLIENT_SECRET": CLIENT_SECRET, "PEER_PASSWORD": ALICE[1],
        "CATALOG_KEY": "qk_test_1234",
    }
    done = run("provider_registry.py", env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines: List[str] = done.stdout.splitlines()
    assert lines[0] == "context: dev" and lines[1] == "login: {'catalog': True, 'peer': True}", lines
    assert re.match(r"peer +password +authenticated +password grant", lines[2]), lines
    assert re.match(r"catalog +api_key +authenticated +API key from env:CATALOG_KEY", lines[3]), lines
    assert "BasicCredential(name='catalog', status='authenticated'" in lines[4]
    assert "OAuthCredential(name='peer'" in lines[5] and "access_token=<redacted>" in lines[5]
    assert lines[6] == "refresh: {'peer': True}", lines
    assert lines[7] == "catalog headers: ['x-api-key'] peer headers: ['authorization']", lines
    assert lines[8:] == [
        "peer token valid 60 s more: True",
        "logged in to the issuer: True",
        "logout: {'catalog': True, 'peer': True}",
        "logged in after logout: None",
    ], lines
    assert "qk_test_1234" not in done.stdout


def test_device_code_login(oidc_provider: OidcProvider, tmp_path: Path) -> None:
    env = {"TESSERA_ISSUER": oidc_provider.issuer, "CLIENT_ID": DEVICE_CLIENT_ID, "TOKEN_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "device_code_login.py")], env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        first: List[str] = []
        reader = threading.Thread(target=lambda: first.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(RUN_TIMEOUT_S)
        assert first and first[0].startswith("or open "), first
        url = first[0].removeprefix("or open ").strip()
        user_code = url.split("user_code=")[1]
        approve_device(oidc_provider.verification_uri, user_code)  # the person, on their phone
        out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 0, out + err
    assert "logged in; refresh token: True" in out and "header starts with: Bearer " in out
    assert f"and enter {user_code}" in err
    assert (tmp_path / "tokens.json").exists()


def test_otp_login(idp: Idp, tmp_path: Path) -> None:
    email = "alice@example.com"
    env = {
        "TESSERA_ISSUER": idp.issuer, "CLIENT_ID": "tessera-cli", "EMAIL": email, "TOKEN_DIR": str(tmp_path),
        "OUTBOX_URL": idp.url("/_test/outbox?to=" + email),
    }
    mailed_before = len(idp.outbox(email))  # the outbox outlives /_test/reset
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "otp_login.py")], env={**os.environ, **env}, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    asked: List[str] = []
    skipped: List[str] = []
    try:
        for answer in ("000000", None):  # a wrong code first: the example asks again
            line: List[str] = []

            def read_prompt() -> None:
                for _ in range(5):  # skips "That code was refused ..."
                    text = process.stderr.readline()  # type: ignore[union-attr]
                    if not text or text.startswith("Enter"):
                        line.append(text)
                        return
                    skipped.append(text)

            reader = threading.Thread(target=read_prompt, daemon=True)
            reader.start()
            reader.join(RUN_TIMEOUT_S)
            assert line and line[0].startswith("Enter the email code sent to"), line
            asked.append(line[0])
            process.stdin.write((answer or idp.last_code(email)) + "\n")  # type: ignore[union-attr]
            process.stdin.flush()  # type: ignore[union-attr]
        out, err = process.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        process.kill()
    assert process.returncode == 0, out + err
    assert "(attempt 1)" in asked[0] and "(attempt 2)" in asked[1], asked
    assert skipped and skipped[0].startswith("That code was refused"), skipped
    assert out.splitlines() == [
        "terminal login: refresh token: True",
        "bot login: header starts with: Bearer ",
        "later: cached: True",
        "mailbox: header starts with: Bearer ",
        "daemon: reauthentication required, no code mailed",
    ], out
    assert len(idp.outbox(email)) == mailed_before + 3, "one code per login; none for the daemon"
    assert (tmp_path / "tokens.json").exists()


def test_browser_then_api_key(idp: Idp, tmp_path: Path) -> None:
    from test_interactive import _browser_dir, _require_chromium

    node = _require_chromium()
    # webbrowser runs $BROWSER: headless Chromium signs in as alice (interop/browser/sign-in.mjs).
    browser = f"{node} {_browser_dir() / 'sign-in.mjs'} %s alice alice-password"
    env = {"TESSERA_ISSUER": idp.issuer, "CLIENT_ID": "tessera-cli", "TOKEN_DIR": str(tmp_path), "BROWSER": browser}
    done = run("browser_then_api_key.py", env, timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    # The browser stand-in prints a JSON line of its own.
    lines = [line for line in done.stdout.splitlines() if not line.startswith("{")]
    assert re.match(r"created ci \(\S+\), ACTIVE, expires \d{4}-\d\d-\d\d$", lines[0]), lines
    assert lines[1:] == ["CI call: 200", "revoked: REVOKED"], lines
    stats = idp.stats()
    assert stats["authorization_code_grants"] == 1, stats


def test_domain_chain(idp: Idp, tmp_path: Path) -> None:
    state = tmp_path / "chain.json"
    env = {**idp_env(idp), "USERNAME": ALICE[0], "PASSWORD": ALICE[1], "STATE_FILE": str(state)}
    done = run("domain_chain.py", env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    for line, domain in zip(lines, ("alpha", "beta", "gamma")):
        assert line.startswith(f"{domain}: ") and f"/chain/domains/{domain}, expires" in line, lines
    assert lines[3:] == ["closed: []", "restored: beta Bearer "], lines
    stats = idp.stats()
    assert (stats["password_grants"], stats["chain_discovery_requests"], stats["chain_domain_access_requests"]) == (1, 1, 3)
    text = state.read_text()
    assert ALICE[1] not in text and CLIENT_SECRET not in text
    assert state.stat().st_mode & 0o777 == 0o600


def test_transport_httpx(idp: Idp) -> None:
    done = run("transport_httpx.py", {**idp_env(idp), "USERNAME": ALICE[0], "PASSWORD": ALICE[1]})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "sync sent: ['GET /.well-known/openid-configuration', 'POST /token', 'POST /token']",
        "async: 100 callers, headers: 1 token requests: 1",
        "callable: header starts with: Bearer ",
    ], done.stdout
    stats = idp.stats()
    assert (stats["password_grants"], stats["refresh_grants"]) == (3, 1), stats
    assert ALICE[1] not in done.stdout + done.stderr


def test_sans_io_httpx(idp: Idp) -> None:
    email = "alice@example.com"
    outbox = idp.url("/_test/outbox?to=" + email)
    done = run("sans_io_httpx.py", {**idp_env(idp), "USERNAME": ALICE[0], "PASSWORD": ALICE[1], "EMAIL": email,
                                    "OTP_OUTBOX": outbox})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "login: done token type: Bearer",
        "cached: True",
        "login_with: done new token: True",
        "refresh: done",
        "logout: logged_out revoked: True",
        "email code: done",
    ], done.stdout
    stats = idp.stats()
    assert (stats["password_grants"], stats["refresh_grants"]) == (2, 1), stats


def test_sans_io_chain(idp: Idp) -> None:
    done = run("sans_io_chain.py", {**idp_env(idp), "USERNAME": ALICE[0], "PASSWORD": ALICE[1]})
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "alpha: Alpha Domain, resource answered 200",
        "beta: Beta Domain, resource answered 200",
        "cached alpha: True",
        "cached beta: True",
    ], done.stdout
    stats = idp.stats()
    assert (stats["password_grants"], stats["refresh_grants"]) == (1, 0), stats
    assert (stats["chain_discovery_requests"], stats["chain_domain_access_requests"]) == (1, 2), stats
    # Like auki's loop: after setup, nothing but actions and events (and the cache read at the end).
    source = (EXAMPLES / "sans_io_chain.py").read_text()
    calls = set(re.findall(r"\bengine\.(\w+)\(", source))
    assert calls == {"register", "register_chain", "domain_access", "handle", "cached_domain_access"}, calls
    for secret in (ALICE[1], CLIENT_SECRET):
        assert secret not in done.stdout + done.stderr


def test_password_totp_401(idp: Idp, tmp_path: Path) -> None:
    env = {**idp_env(idp), "USERNAME": BOB[0], "PASSWORD": BOB[1], "TOTP_SECRET": BOB_TOTP_SECRET,
           "TOKEN_DIR": str(tmp_path / "tokens")}
    before = idp.stats()
    done = run("password_totp_401.py", env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "first call: 200 bob",
        "after revocation: 401",
        "after force_refresh: 200",
        "with the adapter: 200",
    ], done.stdout
    after = idp.stats()
    assert after["password_grants"] - before["password_grants"] == 1, "one login; the rest were refreshes"
    assert any((tmp_path / "tokens").iterdir()), "tokens are stored"


def test_resource_login(idp: Idp, tmp_path: Path) -> None:
    from test_interactive import _browser_dir, _require_chromium

    node = _require_chromium()
    browser = f"{node} {_browser_dir() / 'sign-in.mjs'} %s alice alice-password"
    env = {
        "RESOURCE_URL": idp.url("/api/resource"), "OTHER_RESOURCE_URL": idp.url("/api/files"),
        "TOKEN_DIR": str(tmp_path), "BROWSER": browser,
    }
    before = idp.stats()
    done = run("resource_login.py", env, timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if not line.startswith("{")]
    assert lines == [
        f"api: 200 aud={idp.url('/api/resource')}",
        "other API with the same token: 401",
        f"other API: 200 aud={idp.url('/api/files')}",
    ], lines
    after = idp.stats()
    assert after["client_registrations"] - before["client_registrations"] == 1
    assert after["authorization_code_grants"] - before["authorization_code_grants"] == 1

