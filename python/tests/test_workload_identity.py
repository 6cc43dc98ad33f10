"""Workload identity federation from Python (``tessera.WorkloadIdentity``) against panva's
oidc-provider: the platform token (an oidc-provider access token for alice, standing in for a
Kubernetes or CI token) is read from a file, an environment variable or a GitHub-Actions-style
token endpoint at every login and exchanged (RFC 8693) by the host script's token-exchange grant."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Iterator, List

import pytest

import tessera
from conftest import ALICE, OidcProvider

CONFIDENTIAL = ("confidential-client", "confidential-secret")
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def platform_token(op: OidcProvider) -> str:
    """A fresh access token for alice from the confidential client (the workload's platform token)."""
    form = urllib.parse.urlencode(
        {"grant_type": "password", "username": ALICE[0], "password": ALICE[1], "scope": "openid api:read"}
    ).encode()
    basic = base64.b64encode(":".join(CONFIDENTIAL).encode()).decode()
    request = urllib.request.Request(op.issuer + "/token", data=form, headers={"authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["access_token"]


def exchanging(op: OidcProvider, grant: tessera.WorkloadIdentity) -> tessera.SyncClient:
    return tessera.SyncClient(
        op.issuer, client_id=CONFIDENTIAL[0], client_secret=CONFIDENTIAL[1], grant=grant, scope="api:read"
    )


def test_a_file_and_a_variable_are_exchanged(oidc_provider: OidcProvider, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "token"
    path.write_text(platform_token(oidc_provider) + "\n")
    grant = tessera.WorkloadIdentity(f"file:{path}", subject_token_type=ACCESS_TOKEN_TYPE, audience="https://api")
    assert "file:" in repr(grant) and "token_exchange" in repr(grant)
    with exchanging(oidc_provider, grant) as client:
        assert client.authorization_header().startswith("Bearer ")
    monkeypatch.setenv("TESSERA_TEST_PLATFORM_TOKEN", platform_token(oidc_provider))
    grant = tessera.WorkloadIdentity("env:TESSERA_TEST_PLATFORM_TOKEN", subject_token_type=ACCESS_TOKEN_TYPE)
    with exchanging(oidc_provider, grant) as client:
        assert client.tokens().refresh_token is None
    assert oidc_provider.grant_type(TOKEN_EXCHANGE) == 2


@pytest.fixture
def github_actions(oidc_provider: OidcProvider, monkeypatch) -> Iterator[List[str]]:
    """A GitHub-Actions-style OIDC token endpoint on loopback, named by the two variables a job with
    ``id-token: write`` has; it answers only its bearer token, and records the audiences asked."""
    token = platform_token(oidc_provider)
    audiences: List[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            authorized = self.headers.get("authorization") == "bearer request-token-for-the-job"
            audiences.append(query.get("audience", [""])[0])
            body = json.dumps({"value": token, "count": 1} if authorized else {"message": "no"}).encode()
            self.send_response(200 if authorized else 401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", f"http://127.0.0.1:{server.server_port}/token?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token-for-the-job")
    yield audiences
    server.shutdown()


def test_github_actions_token_is_asked_with_its_audience(oidc_provider: OidcProvider, github_actions) -> None:
    grant = tessera.WorkloadIdentity(
        "github-actions", subject_token_type=ACCESS_TOKEN_TYPE, subject_token_audience="sts.example"
    )
    with exchanging(oidc_provider, grant) as client:
        assert client.authorization_header().startswith("Bearer ")
    assert github_actions == ["sts.example"]
    assert oidc_provider.grant_type(TOKEN_EXCHANGE) == 1


def test_github_actions_outside_a_job_and_bad_settings(oidc_provider: OidcProvider, monkeypatch) -> None:
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    grant = tessera.WorkloadIdentity("github-actions", subject_token_type=ACCESS_TOKEN_TYPE)
    with exchanging(oidc_provider, grant) as client:
        with pytest.raises(tessera.ConfigurationError, match="id-token: write"):
            client.authorization_header()
    with pytest.raises(tessera.ConfigurationError, match="subject_token"):
        tessera.WorkloadIdentity("keyring:S3cr3t")
    with pytest.raises(tessera.ConfigurationError, match="subject_token_field"):
        tessera.WorkloadIdentity("file:/t", subject_token_field="value")
    with pytest.raises(tessera.ConfigurationError, match="exchange"):
        tessera.WorkloadIdentity("file:/t", exchange="swap")
    assert oidc_provider.grant_type(TOKEN_EXCHANGE) == 0


def test_a_google_external_account_file_is_the_grant_and_the_client(oidc_provider: OidcProvider, tmp_path: Path) -> None:
    """What ``gcloud iam workload-identity-pools create-cred-config`` writes, pointed at oidc-provider
    (its confidential client stands in for the file's optional client_id / client_secret): the
    file gives the subject token, the audience, the token endpoint and the client."""
    token_file = tmp_path / "token"
    token_file.write_text(platform_token(oidc_provider))
    credentials = tmp_path / "external-account.json"
    credentials.write_text(
        json.dumps(
            {
                "type": "external_account",
                "audience": "https://api.example",
                "subject_token_type": ACCESS_TOKEN_TYPE,
                "token_url": oidc_provider.issuer + "/token",
                "credential_source": {"file": str(token_file), "format": {"type": "text"}},
                "client_id": CONFIDENTIAL[0],
                "client_secret": CONFIDENTIAL[1],
            }
        )
    )
    grant = tessera.WorkloadIdentity(external_account=f"file:{credentials}")
    assert CONFIDENTIAL[1] not in repr(grant)
    with tessera.SyncClient(grant=grant, scope="api:read") as client:
        token = client.access_token()
    assert oidc_provider.grant_type(TOKEN_EXCHANGE) == 1
    body = oidc_provider.introspect(token)
    assert (body["active"], body["aud"]) == (True, "https://api.example"), body

    # Errors name the field and the file, never what is in it.
    credentials.write_text('{"type": "service_account", "private_key": "S3cr3t"}')
    with pytest.raises(tessera.ConfigurationError, match="external_account") as raised:
        tessera.WorkloadIdentity(external_account=f"file:{credentials}")
    assert "S3cr3t" not in str(raised.value)
    with pytest.raises(tessera.ConfigurationError, match="subject_token"):
        tessera.WorkloadIdentity()
