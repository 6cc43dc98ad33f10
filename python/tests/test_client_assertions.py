"""Client assertions (RFC 7523: ``private_key_jwt``, ``client_secret_jwt``) from every Python entry
point that takes client settings — ``Client`` / ``SyncClient`` keywords, ``ClientAuth`` in a
``ProviderConfig``, a TOML ``file:`` reference through ``AuthClient``, the sans-I/O
``NativeEngine`` and a token-exchange ``Stage`` — against panva's oidc-provider, which verifies
each assertion and records its ``jti`` / ``aud`` / ``alg`` (``GET /_stats``). The keys are the
test-only fixtures in ``testdata/client-assertion/``."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Tuple

import pytest

import tessera
from conftest import ALICE, ROOT, OidcProvider, no_key_material
from tessera.native import NativeEngine
from test_native import drive

KEYS = ROOT / "testdata" / "client-assertion"
JWT_CLIENT_ID = "jwt-client"
SECRET_JWT_CLIENT_ID = "secret-jwt-client"
SECRET_JWT_CLIENT_SECRET = "secret-jwt-client-secret-of-at-least-32-bytes"


def key(name: str) -> str:
    return (KEYS / name).read_text()


def fresh_assertions(op: OidcProvider, expected: int) -> Dict[str, Any]:
    """The server saw `expected` assertions, each with its own 128-bit jti and the token endpoint as audience."""
    stats = op.stats()
    jtis: List[str] = stats["assertion_jtis"]
    assert len(jtis) == expected and len(set(jtis)) == expected, jtis
    assert all(len(jti) >= 22 for jti in jtis), jtis
    assert set(stats["assertion_auds"]) == {op.issuer + "/token"}, stats["assertion_auds"]
    return stats


async def test_client_keywords_take_a_jwk_and_each_request_sends_a_new_assertion(oidc_provider: OidcProvider) -> None:
    client = tessera.Client(
        oidc_provider.issuer,
        client_id=JWT_CLIENT_ID,
        client_assertion_key=key("ec.jwk.json"),  # its kid, test-ec, is used
        grant=tessera.Password(*ALICE),
        scope="openid api:read",
    )
    first = await client.tokens()
    assert first.refresh_token is not None
    await client.force_refresh()
    assert (await client.logout()).revoked
    stats = fresh_assertions(oidc_provider, 3)
    assert stats["assertion_algs"] == ["ES256"] * 3
    assert (stats["by_grant_type"].get("password"), stats["by_grant_type"].get("refresh_token")) == (1, 1)
    assert "test-ec" not in repr(client) and "BEGIN" not in repr(client)


def test_sync_client_keywords_sign_with_a_pem_and_the_given_alg(oidc_provider: OidcProvider) -> None:
    client = tessera.SyncClient(
        oidc_provider.issuer,
        client_id=JWT_CLIENT_ID,
        client_assertion_key=key("rsa.pem"),
        client_assertion_alg="PS256",
        client_assertion_kid="test-rsa",
        scope="api:read",
    )
    assert client.authorization_header().startswith("Bearer ")
    assert fresh_assertions(oidc_provider, 1)["assertion_algs"] == ["PS256"]


def test_client_secret_jwt_through_client_auth_keyword_and_provider_config(oidc_provider: OidcProvider) -> None:
    by_keyword = tessera.SyncClient(
        oidc_provider.issuer,
        client_id=SECRET_JWT_CLIENT_ID,
        client_secret=SECRET_JWT_CLIENT_SECRET,
        client_auth="client_secret_jwt",
        scope="api:read",
    )
    by_keyword.access_token()
    auth = tessera.ClientAuth(SECRET_JWT_CLIENT_ID, SECRET_JWT_CLIENT_SECRET, method="client_secret_jwt")
    assert auth.method == "client_secret_jwt"
    provider = tessera.ProviderConfig(
        auth, tessera.Endpoints.discover(oidc_provider.issuer), tessera.ClientCredentials(), scope="api:read"
    )
    tessera.SyncClient(provider=provider).access_token()
    assert fresh_assertions(oidc_provider, 2)["assertion_algs"] == ["HS256", "HS256"]


def test_an_unset_client_auth_is_chosen_from_the_servers_metadata(oidc_provider_server: Any) -> None:
    """A server that offers ``client_secret_jwt`` and not ``client_secret_basic``: a client given a
    secret and no ``client_auth`` signs an assertion (read from the discovered
    ``token_endpoint_auth_methods_supported``); one that names ``client_secret_basic`` sends it."""
    import os
    import shutil

    from conftest import _Server

    node = os.environ.get("NODE") or shutil.which("node")
    assert node is not None  # the oidc_provider_server fixture skipped or failed otherwise
    env = {"EXIT_ON_STDIN_CLOSE": "1", "CLIENT_AUTH_METHODS": "none,client_secret_jwt,private_key_jwt"}
    server = _Server([node, "server.mjs"], env=env, cwd=ROOT / "interop" / "oidc-provider")
    try:
        op = OidcProvider(server)
        unset = tessera.SyncClient(
            op.issuer, client_id=SECRET_JWT_CLIENT_ID, client_secret=SECRET_JWT_CLIENT_SECRET, scope="api:read"
        )
        assert unset.authorization_header().startswith("Bearer ")
        assert fresh_assertions(op, 1)["assertion_algs"] == ["HS256"]
        named = tessera.SyncClient(
            op.issuer,
            client_id=SECRET_JWT_CLIENT_ID,
            client_secret=SECRET_JWT_CLIENT_SECRET,
            client_auth="client_secret_basic",
            scope="api:read",
        )
        with pytest.raises(tessera.AuthenticationError) as raised:
            named.access_token()
        assert raised.value.code == "invalid_client"
        assert len(op.stats()["assertion_jtis"]) == 1
    finally:
        server.stop()


def test_client_auth_class_takes_the_assertion_keywords(oidc_provider: OidcProvider) -> None:
    auth = tessera.ClientAuth(JWT_CLIENT_ID, client_assertion_key=key("ed25519.pem"), client_assertion_kid="test-ed")
    assert auth.method == "private_key_jwt"
    assert "PRIVATE" not in repr(auth)
    provider = tessera.ProviderConfig(
        auth, tessera.Endpoints.discover(oidc_provider.issuer), tessera.ClientCredentials(), scope="api:read"
    )
    tessera.SyncClient(provider=provider).access_token()
    assert fresh_assertions(oidc_provider, 1)["assertion_algs"] == ["EdDSA"]


async def test_a_pem_file_reference_in_toml(oidc_provider: OidcProvider) -> None:
    toml = f"""
current_context = "dev"
[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "svc"
type = "client_credentials"
issuer = "{oidc_provider.issuer}"
client_id = "{JWT_CLIENT_ID}"
client_assertion_key = "file:{KEYS / 'rsa.pem'}"
client_assertion_kid = "test-rsa"
scope = "api:read"
"""
    client = tessera.AuthClient.from_toml(toml, store=tessera.MemoryStore())
    headers = await client.headers("svc")
    assert headers["authorization"].startswith("Bearer ")
    assert fresh_assertions(oidc_provider, 1)["assertion_algs"] == ["RS256"]


async def test_a_wrong_key_is_an_authentication_error_without_key_material(oidc_provider: OidcProvider) -> None:
    wrong = key("wrong-ec.pem")
    client = tessera.Client(
        oidc_provider.issuer, client_id=JWT_CLIENT_ID, client_assertion_key=wrong, client_assertion_kid="test-ec"
    )
    with pytest.raises(tessera.AuthenticationError) as raised:
        await client.authorization_header()
    assert raised.value.code == "invalid_client"
    no_key_material(f"{raised.value!r} {raised.value}", wrong)


def test_unusable_keys_and_stray_keywords_are_configuration_errors_naming_the_field() -> None:
    base: Dict[str, Any] = {"token_endpoint": "https://idp.example/token", "client_id": JWT_CLIENT_ID}
    secret_text = "-----BEGIN PRIVATE KEY-----\nTHISISNOTAKEYBUTSECRET\n-----END PRIVATE KEY-----\n"
    cases: List[Tuple[Dict[str, Any], str]] = [
        ({"client_assertion_key": secret_text}, "client_assertion_key"),
        ({"client_assertion_key": key("p384.pem")}, "client_assertion_key"),
        ({"client_assertion_key": key("ec.pem"), "client_assertion_alg": "RS256"}, "client_assertion_alg"),
        ({"client_assertion_kid": "k", "client_secret": "s"}, "client_assertion_kid"),
        ({"client_auth": "private_key_jwt", "client_secret": "s"}, "client_assertion_key"),
    ]
    for kwargs, field in cases:
        with pytest.raises(tessera.ConfigurationError) as raised:
            tessera.SyncClient(**base, **kwargs)
        assert field in str(raised.value), (field, str(raised.value))
        no_key_material(str(raised.value), secret_text, key("ec.pem"), key("p384.pem"))
    provider = tessera.ProviderConfig(
        tessera.ClientAuth(JWT_CLIENT_ID, client_assertion_key=key("ec.pem")),
        tessera.Endpoints.explicit("https://idp.example/token"),
        tessera.ClientCredentials(),
    )
    with pytest.raises(tessera.ConfigurationError, match="client_assertion_key"):
        tessera.SyncClient(provider=provider, client_assertion_key=key("ec.pem"))


def test_native_engine_draws_its_own_entropy_for_private_key_jwt(oidc_provider: OidcProvider) -> None:
    engine = NativeEngine()
    engine.register(
        "svc",
        {
            "type": "client_credentials",
            "issuer": oidc_provider.issuer,
            "client_id": JWT_CLIENT_ID,
            "client_assertion_key": key("ec.pem"),
            "client_assertion_kid": "test-ec",
            "scope": "api:read",
        },
    )
    assert drive(engine, engine.ensure("svc"))["type"] == "done"
    assert drive(engine, engine.login("svc"))["type"] == "done"
    # Another engine (another process, as far as the server knows) never repeats a jti.
    other = NativeEngine()
    other.register("svc", json.dumps({"type": "client_credentials", "issuer": oidc_provider.issuer,
                                      "client_id": JWT_CLIENT_ID, "client_assertion_key": key("ec.pem"),
                                      "scope": "api:read"}))
    assert drive(other, other.ensure("svc"))["type"] == "done"
    fresh_assertions(oidc_provider, 3)
    with pytest.raises(tessera.ConfigurationError, match="32"):
        engine.set_entropy(b"too short")
    engine.set_entropy(bytes(range(32)))
    assert drive(engine, engine.login("svc"))["type"] == "done"


async def test_a_token_exchange_stage_signs_with_its_client_assertion_key(oidc_provider: OidcProvider) -> None:
    auth = tessera.ClientAuth(JWT_CLIENT_ID, client_assertion_key=key("rsa.pem"), client_assertion_kid="test-rsa")
    network = tessera.Client(
        oidc_provider.issuer, client_id=JWT_CLIENT_ID, client_assertion_key=key("rsa.pem"),
        client_assertion_kid="test-rsa", grant=tessera.Password(*ALICE), scope="openid api:read",
    )
    token_endpoint = oidc_provider.issuer + "/token"
    chain = tessera.ChainConfig(
        discovery=tessera.Stage.token_exchange(token_endpoint, auth, audience="discovery"),
        domain=tessera.Stage.token_exchange(token_endpoint, auth, audience="https://domains.example/{domain_id}"),
    )
    async with tessera.DomainClient(network, chain) as domains:
        access = await domains.get_domain_access("alpha")
        assert access.access_token
    fresh_assertions(oidc_provider, 3)
    with pytest.raises(tessera.ConfigurationError, match="client_assertion_key"):
        tessera.Stage.token_exchange(token_endpoint, tessera.ClientAuth(JWT_CLIENT_ID, client_assertion_key="nope"))


def _assertion_jti(actions: List[Dict[str, Any]]) -> str:
    """The jti of the client assertion in the first request of `actions`."""
    import base64
    import urllib.parse

    request = actions[0]
    assert request["type"] == "http_request", request
    form = urllib.parse.parse_qs(request["body"])
    payload = form["client_assertion"][0].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["jti"])


def test_a_forked_child_never_repeats_the_parents_jti() -> None:
    """A NativeEngine made before os.fork (gunicorn --preload): the child gets new entropy, so its
    assertions' jti values differ from the parent's (the same seed and counter would repeat them)."""
    import os

    engine = NativeEngine()
    engine.register(
        "svc",
        {
            "type": "client_credentials",
            "token_endpoint": "http://127.0.0.1:9/token",
            "client_id": JWT_CLIENT_ID,
            "client_assertion_key": key("ec.pem"),
        },
    )
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first request's jti, to the parent
        try:
            os.write(write_end, _assertion_jti(engine.ensure("svc")).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child_jti = os.read(read_end, 200).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    parent_jti = _assertion_jti(engine.ensure("svc"))
    assert len(child_jti) >= 22 and len(parent_jti) >= 22, (child_jti, parent_jti)
    assert child_jti != parent_jti


def test_a_certificate_adds_x5t_x5t_s256_and_x5c(oidc_provider: OidcProvider) -> None:
    client = tessera.SyncClient(
        oidc_provider.issuer,
        client_id=JWT_CLIENT_ID,
        client_assertion_key=key("ec.pem"),
        client_assertion_certificate=key("ec-cert.pem"),
        scope="api:read",
    )
    assert client.authorization_header().startswith("Bearer ")
    stats = fresh_assertions(oidc_provider, 1)
    assert stats["assertion_x5c_consistent"] == [True]
    assert stats["assertion_x5ts"][0] and len(stats["assertion_x5ts"][0]) == 27  # base64url of 20 bytes
    with pytest.raises(tessera.ConfigurationError, match="client_assertion_certificate"):
        tessera.ClientAuth(JWT_CLIENT_ID, client_assertion_certificate=key("ec-cert.pem"))
