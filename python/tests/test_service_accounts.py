"""The JWT bearer grant (RFC 7523 §2.1) from Python: ``tessera.JwtBearer`` with a Google-style
service-account key file (``service_account_key="file:..."``) and with a plain ``assertion_key``,
against the reference IdP, which verifies every assertion (signature, kid, aud, exp, jti replay)
for its demo service account. The token is then accepted by the IdP's ``/api/whoami``."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any, Dict

import pytest

import tessera
from conftest import ROOT, Idp, no_key_material

# The reference IdP's demo service account (tessera_idp::demo::SERVICE_ACCOUNT_*): a public test
# fixture, registered with every `tessera idp serve`.
DEMO_KEY = (ROOT / "testdata" / "service-account" / "demo-private-key.pem").read_text()
DEMO_EMAIL = "robot@tessera-demo.iam.example"
DEMO_KID = "tessera-demo-key-1"
# A valid RSA key the IdP does not know (the client-assertion fixtures).
OTHER_KEY = (ROOT / "testdata" / "client-assertion" / "rsa.pem").read_text()


def key_file(path: Path, token_uri: str, private_key: str = DEMO_KEY) -> Path:
    """What `tessera_idp::demo::service_account_key_file(token_uri)` writes: a Google-style key file."""
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "tessera-demo",
                "private_key_id": DEMO_KID,
                "private_key": private_key,
                "client_email": DEMO_EMAIL,
                "client_id": "100000000000000000001",
                "auth_uri": "https://accounts.example/o/oauth2/auth",
                "token_uri": token_uri,
            }
        )
    )
    return path


def whoami(idp: Idp, header: str) -> Dict[str, Any]:
    request = urllib.request.Request(idp.url("/api/whoami"), headers={"authorization": header})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def test_a_key_file_gives_the_client_id_and_token_endpoint_and_the_idp_accepts_the_token(
    idp: Idp, tmp_path: Path
) -> None:
    grant = tessera.JwtBearer(service_account_key="file:" + str(key_file(tmp_path / "robot.json", idp.url("/token"))))
    assert grant.name == "jwt_bearer" and grant.unattended
    assert (grant.client_id, grant.token_endpoint) == (DEMO_EMAIL, idp.url("/token"))
    assert "BEGIN" not in repr(grant) and "scope_in_assertion=True" in repr(grant)
    client = tessera.SyncClient(grant=grant, scope="api:read")
    header = client.authorization_header()
    assert header.startswith("Bearer ")
    assert client.authorization_header() == header, "the token is reused until it expires"
    me = whoami(idp, header)
    assert (me["sub"], me["scope"]) == (DEMO_EMAIL, "api:read")


async def test_an_assertion_key_with_subject_and_issuer_through_the_async_client(idp: Idp) -> None:
    grant = tessera.JwtBearer(DEMO_KEY, assertion_kid=DEMO_KID, subject="alice", assertion_lifetime=180)
    assert grant.client_id is None and grant.token_endpoint is None
    async with tessera.Client(idp.issuer, client_id=DEMO_EMAIL, grant=grant, scope="api:read") as client:
        tokens = await client.tokens()
        me = whoami(idp, "Bearer " + tokens.access_token)
    assert (me["sub"], me["scope"]) == ("alice", "api:read"), "sub delegation, scope in the form"


def test_a_key_file_through_provider_config_and_token_endpoint_over_token_uri(idp: Idp, tmp_path: Path) -> None:
    text = key_file(tmp_path / "robot.json", "https://oauth2.googleapis.example/token").read_text()
    grant = tessera.JwtBearer(service_account_key=text)
    config = tessera.ProviderConfig(
        tessera.ClientAuth.public(DEMO_EMAIL), tessera.Endpoints.explicit(idp.url("/token")), grant, scope="api:read"
    )
    assert whoami(idp, tessera.SyncClient(provider=config).authorization_header())["sub"] == DEMO_EMAIL
    # The client keyword replaces the file's token_uri (nothing goes to the example host).
    by_keyword = tessera.SyncClient(token_endpoint=idp.url("/token"), grant=grant, scope="api:read")
    assert whoami(idp, by_keyword.authorization_header())["sub"] == DEMO_EMAIL


def test_the_client_id_comes_from_the_key_file_only(idp: Idp, tmp_path: Path) -> None:
    grant = tessera.JwtBearer(service_account_key="file:" + str(key_file(tmp_path / "k.json", idp.url("/token"))))
    with pytest.raises(tessera.ConfigurationError, match='field "client_id": comes from service_account_key'):
        tessera.SyncClient(client_id="someone-else", grant=grant)
    with pytest.raises(tessera.ConfigurationError, match='ProviderConfig, field "client_id"'):
        tessera.ProviderConfig(tessera.ClientAuth.public("someone-else"), tessera.Endpoints.explicit("x"), grant)


def test_a_wrong_key_is_refused_by_the_idp_without_key_material_in_the_error(idp: Idp, tmp_path: Path) -> None:
    path = key_file(tmp_path / "wrong.json", idp.url("/token"), private_key=OTHER_KEY)
    for grant, client_id in [
        (tessera.JwtBearer(service_account_key="file:" + str(path)), None),
        (tessera.JwtBearer(OTHER_KEY, assertion_kid=DEMO_KID), DEMO_EMAIL),
    ]:
        kwargs: Dict[str, Any] = {"token_endpoint": idp.url("/token")} if client_id is None else {}
        client = tessera.SyncClient(
            issuer=None if client_id is None else idp.issuer, client_id=client_id, grant=grant, **kwargs
        )
        with pytest.raises(tessera.AuthenticationError) as refused:
            client.authorization_header()
        assert refused.value.code == "invalid_grant", refused.value
        no_key_material(str(refused.value), OTHER_KEY, DEMO_KEY)
        no_key_material(repr(refused.value), OTHER_KEY, DEMO_KEY)


def test_bad_keys_and_files_are_configuration_errors_naming_the_field_never_the_value(tmp_path: Path) -> None:
    with pytest.raises(tessera.ConfigurationError, match='field "assertion_key": is required'):
        tessera.JwtBearer()
    with pytest.raises(tessera.ConfigurationError, match='field "assertion_key"') as not_a_key:
        tessera.JwtBearer("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1ub3QtYS1rZXk=\n-----END PRIVATE KEY-----")
    assert "c2VjcmV0" not in str(not_a_key.value)
    with pytest.raises(tessera.ConfigurationError, match='field "assertion_key": comes from service_account_key'):
        tessera.JwtBearer(DEMO_KEY, service_account_key="file:" + str(key_file(tmp_path / "k.json", "x")))
    user = tmp_path / "adc.json"
    user.write_text(json.dumps({"type": "authorized_user", "refresh_token": "1//very-secret-refresh"}))
    with pytest.raises(tessera.ConfigurationError, match='field "service_account_key"') as wrong_type:
        tessera.JwtBearer(service_account_key="file:" + str(user))
    assert "very-secret" not in str(wrong_type.value)
    with pytest.raises(tessera.ConfigurationError, match=re.escape(str(tmp_path / "missing.json"))):
        tessera.JwtBearer(service_account_key="file:" + str(tmp_path / "missing.json"))
    with pytest.raises(tessera.ConfigurationError, match='field "assertion_alg"'):
        tessera.JwtBearer(DEMO_KEY, assertion_alg="none")
    no_uri = json.loads(key_file(tmp_path / "n.json", "").read_text())
    grant = tessera.JwtBearer(service_account_key=json.dumps(no_uri))
    assert grant.token_endpoint is None
    with pytest.raises(tessera.ConfigurationError, match='field "service_account_key": has no "token_uri"'):
        tessera.SyncClient(grant=grant)


def test_an_expired_token_gets_a_new_assertion(idp: Idp) -> None:
    idp.access_token_ttl(1)
    client = tessera.SyncClient(
        token_endpoint=idp.url("/token"), client_id=DEMO_EMAIL, grant=tessera.JwtBearer(DEMO_KEY), refresh_skew=0
    )
    first = client.authorization_header()
    time.sleep(1.2)
    # The IdP dates tokens in whole seconds: a one-second token can be dead a millisecond after it
    # is issued, so the token whoami checks gets a minute.
    idp.access_token_ttl(60)
    second = client.authorization_header()
    assert first != second, "a new assertion (its jti not replayed) bought a new token"
    assert whoami(idp, second)["sub"] == DEMO_EMAIL


def test_a_file_reference_expands_home_and_an_env_reference_holds_the_json(
    idp: Idp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = key_file(tmp_path / "robot.json", idp.url("/token"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TESSERA_TEST_SA_JSON", path.read_text())
    for reference in ["file:~/robot.json", "env:TESSERA_TEST_SA_JSON"]:
        client = tessera.SyncClient(grant=tessera.JwtBearer(service_account_key=reference), scope="api:read")
        assert whoami(idp, client.authorization_header())["sub"] == DEMO_EMAIL, reference
    monkeypatch.delenv("TESSERA_TEST_SA_JSON")
    with pytest.raises(tessera.ConfigurationError, match="environment variable TESSERA_TEST_SA_JSON is not set"):
        tessera.JwtBearer(service_account_key="env:TESSERA_TEST_SA_JSON")
