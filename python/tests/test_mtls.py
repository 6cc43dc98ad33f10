"""Mutual TLS (RFC 8705) from Python: ``tls_client_certificate`` / ``tls_client_key`` on ``Client``,
``SyncClient`` and ``ProviderConfig``, against panva's oidc-provider, whose mTLS listener (published
as ``mtls_endpoint_aliases``) authenticates the client by its certificate and binds the access token
to it. The certificates are the test-only fixtures in ``testdata/mtls/``."""

from __future__ import annotations

import ssl
from typing import Optional, Tuple

import httpx
import pytest

import tessera
from conftest import ALICE, ROOT, OidcProvider

CERTS = ROOT / "testdata" / "mtls"
MTLS_CLIENT_ID = "mtls-client"
SELF_SIGNED_MTLS_CLIENT_ID = "self-signed-mtls-client"


def userinfo(url: str, token: str, certificate: Optional[Tuple[str, str]]) -> int:
    """GET the userinfo endpoint with `token`, from a client that shows `certificate` (or none)."""
    context = ssl.create_default_context(cafile=str(CERTS / "ca.pem"))
    if certificate is not None:
        context.load_cert_chain(str(CERTS / certificate[0]), str(CERTS / certificate[1]))
    with httpx.Client(verify=context) as http:
        return http.get(url, headers={"Authorization": f"Bearer {token}"}).status_code


async def test_a_certificate_alone_is_tls_client_auth_and_the_token_is_bound_to_it(oidc_provider: OidcProvider) -> None:
    client = tessera.Client(
        oidc_provider.issuer,
        client_id=MTLS_CLIENT_ID,
        grant=tessera.Password(*ALICE),
        scope="openid offline_access",
        ca_file=CERTS / "ca.pem",
        tls_client_certificate=CERTS / "client.pem",
        tls_client_key=CERTS / "client-key.pem",
    )
    first = await client.tokens()
    token = first.access_token
    me = oidc_provider.mtls_base + "/me"
    assert userinfo(me, token, ("client.pem", "client-key.pem")) == 200
    assert userinfo(me, token, ("self-signed.pem", "self-signed-key.pem")) == 401
    assert userinfo(me, token, None) == 401
    await client.force_refresh()
    assert (await client.logout()).revoked
    stats = oidc_provider.stats()
    assert (oidc_provider.grant_type("password"), oidc_provider.grant_type("refresh_token")) == (1, 1)
    assert (stats["revocations"], stats["refresh_token_reuses"]) == (1, 0)
    shown = repr(client)
    assert "BEGIN" not in shown


def test_provider_config_with_self_signed_tls_client_auth(oidc_provider: OidcProvider) -> None:
    auth = tessera.ClientAuth(SELF_SIGNED_MTLS_CLIENT_ID, method="self_signed_tls_client_auth")
    assert auth.method == "self_signed_tls_client_auth"
    provider = tessera.ProviderConfig(
        auth,
        tessera.Endpoints.discover(oidc_provider.issuer),
        tessera.ClientCredentials(),
        scope="api:read",
        ca_file=CERTS / "ca.pem",
        tls_client_certificate=CERTS / "self-signed.pem",
        tls_client_key=CERTS / "self-signed-key.pem",
    )
    assert "tls_client_certificate=" in repr(provider) and "BEGIN" not in repr(provider)
    with tessera.SyncClient(provider=provider) as client:
        assert client.authorization_header().startswith("Bearer ")
    assert oidc_provider.grant_type("client_credentials") == 1


def test_certificate_settings_are_checked_and_errors_quote_no_key(oidc_provider: OidcProvider, tmp_path) -> None:
    key_text = (CERTS / "client-key.pem").read_text()
    with pytest.raises(tessera.ConfigurationError, match="tls_client_certificate") as missing:
        tessera.Client(oidc_provider.issuer, client_id=MTLS_CLIENT_ID, client_auth="tls_client_auth")
    with pytest.raises(tessera.ConfigurationError, match="tls_client_key"):
        tessera.Client(oidc_provider.issuer, client_id=MTLS_CLIENT_ID, tls_client_certificate=CERTS / "client.pem")
    with pytest.raises(tessera.ConfigurationError, match="client_auth must be one of"):
        tessera.ClientAuth(MTLS_CLIENT_ID, method="tls")
    # A key file that holds no key: refused when the client is first used, naming the field only.
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("S3cr3t garbage\n")
    client = tessera.SyncClient(
        oidc_provider.issuer,
        client_id=MTLS_CLIENT_ID,
        ca_file=CERTS / "ca.pem",
        tls_client_certificate=CERTS / "client.pem",
        tls_client_key=garbage,
    )
    with pytest.raises(tessera.ConfigurationError, match="tls_client_key") as unusable:
        client.authorization_header()
    for error in (missing.value, unusable.value):
        assert "S3cr3t" not in str(error) and key_text.splitlines()[1] not in str(error)
    assert oidc_provider.grant_type("client_credentials") == 0
