"""The Cognito grant against a third-party emulator: jagregory/cognito-local (interop/cognito-local),
which speaks USER_PASSWORD_AUTH, REFRESH_TOKEN_AUTH and RevokeToken (not CUSTOM_AUTH: that one is
tested against the reference IdP in test_interactive.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import tessera
from conftest import ROOT, START_TIMEOUT_S

PASSWORD = "Alice-Passw0rd!"


class CognitoLocal:
    def __init__(self, process: "subprocess.Popen[str]", endpoint: str) -> None:
        self.process = process
        self.endpoint = endpoint

    def call(self, operation: str, body: Dict[str, Any]) -> Dict[str, Any]:
        request = urllib.request.Request(
            self.endpoint, data=json.dumps(body).encode(), method="POST",
            headers={
                "content-type": "application/x-amz-json-1.1",
                "x-amz-target": f"AWSCognitoIdentityProviderService.{operation}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read() or b"{}"))

    def pool_with_user(self, username: str, password: str) -> str:
        """A pool without MFA, a public app client allowing passwords and refresh, one user: the client id."""
        pool = self.call("CreateUserPool", {"PoolName": "tessera", "MfaConfiguration": "OFF"})["UserPool"]["Id"]
        client = self.call("CreateUserPoolClient", {
            "UserPoolId": pool, "ClientName": "public", "GenerateSecret": False,
            "ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        })["UserPoolClient"]["ClientId"]
        self.call("AdminCreateUser", {
            "UserPoolId": pool, "Username": username, "TemporaryPassword": "Temp-Passw0rd!", "MessageAction": "SUPPRESS",
        })
        self.call("AdminSetUserPassword", {"UserPoolId": pool, "Username": username, "Password": password, "Permanent": True})
        return str(client)


@pytest.fixture
def cognito_local(tmp_path: Path) -> Iterator[CognitoLocal]:
    directory = ROOT / "interop" / "cognito-local"
    node = os.environ.get("NODE") or shutil.which("node")
    if node is None or not (directory / "node_modules" / "cognito-local").is_dir():
        if os.environ.get("CI"):
            pytest.fail("cognito-local interop needs node and `npm ci` in interop/cognito-local")
        pytest.skip("node or interop/cognito-local/node_modules missing")
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": "0", "EXIT_ON_STDIN_CLOSE": "1"}
    env.pop("CODE", None)
    env.pop("DEBUG", None)
    process = subprocess.Popen(
        [node, str(directory / "start.cjs")], cwd=tmp_path, env=env, stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    found: List[str] = []

    def read() -> None:
        for _ in range(200):
            line = process.stdout.readline()  # type: ignore[union-attr]
            if not line:
                return
            match = re.search(r"running on (http://127\.0\.0\.1:\d+)", re.sub(r"\x1b\[[0-9;]*m", "", line))
            if match:
                found.append(match.group(1))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    try:
        if not found:
            raise RuntimeError(f"cognito-local did not listen within {START_TIMEOUT_S} s")
        yield CognitoLocal(process, found[0] + "/")
    finally:
        process.kill()
        process.wait(10)
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def refresh_with(client_id: str, refresh_token: str) -> Dict[str, Any]:
    return {"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": client_id, "AuthParameters": {"REFRESH_TOKEN": refresh_token}}


def test_password_login_refresh_and_revoke(cognito_local: CognitoLocal, tmp_path: Path) -> None:
    client_id = cognito_local.pool_with_user("alice", PASSWORD)
    grant = tessera.Cognito(cognito_local.endpoint, "alice", PASSWORD)
    store = tessera.FileStore(tmp_path / "tokens")
    with tessera.SyncClient(client_id=client_id, token_url=cognito_local.endpoint, grant=grant, store=store) as c:
        tokens = c.authorization_header()  # a password login needs nobody: the header logs in
        first = c.tokens()
        assert first.refresh_token and first.id_token
        refreshed = c.force_refresh()
        assert refreshed != tokens
        assert c.tokens().refresh_token == first.refresh_token, "Cognito keeps the refresh token"
        assert "AuthenticationResult" in cognito_local.call("InitiateAuth", refresh_with(client_id, first.refresh_token))
        result = c.logout()
        assert result.revoked
    # The revoked refresh token is dead at the server.
    with pytest.raises(urllib.error.HTTPError):
        cognito_local.call("InitiateAuth", refresh_with(client_id, first.refresh_token))


def test_a_wrong_password_is_a_typed_error_without_the_password(cognito_local: CognitoLocal) -> None:
    client_id = cognito_local.pool_with_user("alice", PASSWORD)
    grant = tessera.Cognito(cognito_local.endpoint, "alice", "Wrong-Passw0rd!")
    with tessera.SyncClient(client_id=client_id, token_url=cognito_local.endpoint, grant=grant) as c:
        with pytest.raises(tessera.AuthenticationError) as raised:
            c.login()
    assert "Wrong-Passw0rd!" not in str(raised.value) + repr(raised.value)
