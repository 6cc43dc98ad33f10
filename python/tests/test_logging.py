"""Rust `tracing` events reach Python `logging` (logger "tessera") with mapped levels and the
refresh span's fields, and never carry a secret."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import tessera
from conftest import ALICE, CLIENT_SECRET, SECRETS, Idp


def texts(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {getattr(r, 'tessera_target', '')}" for r in caplog.records)


def test_a_login_is_logged_at_debug_without_secrets(idp: Idp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tessera")
    client = tessera.SyncClient(idp.issuer, key="logged", **idp.client_kwargs())
    tokens = client.login()
    client.force_refresh()
    refreshed = client.tokens()
    client.logout()
    records = [r for r in caplog.records if r.name == "tessera"]
    assert records, "the login left records"
    stored = [r for r in records if "token obtained and stored" in r.getMessage()]
    assert stored and all(r.levelno == logging.DEBUG for r in stored)
    message = stored[0].getMessage()
    assert "key=logged" in message and "reason=Login" in message and "attempt=1" in message, message
    assert getattr(stored[0], "tessera_target", "").startswith("tessera")
    everything = texts(caplog)
    for secret in [*SECRETS, tokens.access_token, tokens.refresh_token, refreshed.access_token, refreshed.refresh_token]:
        assert secret and secret not in everything, f"a secret reached the logs:\n{everything}"


def test_levels_follow_the_python_logger(idp: Idp, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tessera")
    tessera.SyncClient(idp.issuer, **idp.client_kwargs()).login()
    assert not [r for r in caplog.records if r.name == "tessera" and r.levelno < logging.INFO], "DEBUG filtered out"
    # A failing provider in a best-effort `login()` of every provider is logged at INFO.
    config = f"""
[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "peer"
provider = "password"
issuer = "{idp.issuer}"
client_id = "confidential-client"
client_secret = "{CLIENT_SECRET}"
username = "{ALICE[0]}"
password = "wrong-password"
"""
    client = tessera.SyncAuthClient.from_toml(config)
    assert client.login() == {"peer": False}
    [failed] = [r for r in caplog.records if "login failed" in r.getMessage()]
    assert failed.levelno == logging.INFO and "provider=peer" in failed.getMessage()
    assert CLIENT_SECRET not in texts(caplog) and "wrong-password" not in texts(caplog)


STORED_TOKEN_SCRIPT = """
import sys, tessera
client = tessera.SyncClient(sys.argv[1], key="stored", client_id=sys.argv[2], client_secret=sys.argv[3],
                            grant=tessera.Password(sys.argv[5], sys.argv[6]), store=tessera.FileStore(sys.argv[4]))
print(client.access_token())
print(sorted(name for name in ("logging", "asyncio", "httpx", "requests") if name in sys.modules))
"""


def test_a_script_printing_a_stored_token_imports_neither_logging_nor_asyncio(idp: Idp, tmp_path: Path) -> None:
    # The slow path of a first call logs at DEBUG; with nobody listening (no `logging` imported),
    # forwarding must not import it: that import alone cost more than the rest of such a script.
    import subprocess
    import sys

    store = tmp_path / "store"
    kwargs = idp.client_kwargs()
    token = tessera.SyncClient(idp.issuer, key="stored", store=tessera.FileStore(str(store)), **kwargs).access_token()
    script = tmp_path / "print_token.py"
    script.write_text(STORED_TOKEN_SCRIPT)
    before = idp.stats()["token_requests"]
    done = subprocess.run([sys.executable, str(script), idp.issuer, kwargs["client_id"], kwargs["client_secret"],
                           str(store), *ALICE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed, imported = done.stdout.splitlines()
    assert printed == token
    assert imported == "[]", f"imported on the way: {imported}"
    assert idp.stats()["token_requests"] == before, "served from the store"
