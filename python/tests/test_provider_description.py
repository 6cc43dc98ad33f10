"""One provider description behind every front end: the Python constructors, the JSON engine
and the TOML configuration (crates/tessera/tests/provider_description.rs) give the same typed
error for the same invalid provider, and old keyword spellings still work with a
DeprecationWarning naming the new one."""

from __future__ import annotations

import json
import warnings

import pytest

import tessera
from tessera.native import NativeEngine

ISSUER = "https://idp.example"
# The same text as the Rust suite expects from the TOML configuration and JSON.
MISSING_SECRET = 'field "client_secret": is required with client_auth "client_secret_post"'
RESERVED_PARAM = 'field "authorization_params.state": is set by tessera for every browser login and cannot be given'


def test_a_post_client_without_a_secret_is_the_same_error_everywhere() -> None:
    password = tessera.Password("alice", "pw")
    errors = []
    with pytest.raises(tessera.ConfigurationError) as raised:
        tessera.SyncClient(ISSUER, client_id="cli", client_auth="client_secret_post", grant=password, key="peer")
    errors.append(raised.value)
    with pytest.raises(tessera.ConfigurationError) as raised:
        tessera.ProviderConfig(
            tessera.ClientAuth("cli", method="client_secret_post"), tessera.Endpoints.discover(ISSUER), password
        )
    errors.append(raised.value)
    with pytest.raises(tessera.ConfigurationError) as raised:
        NativeEngine().register(
            "peer",
            {"type": "password", "issuer": ISSUER, "client_id": "cli", "client_auth": "client_secret_post",
             "username": "alice", "password": "pw"},
        )
    errors.append(raised.value)
    for error in errors:
        assert error.kind == "configuration"
        assert str(error).endswith(MISSING_SECRET), str(error)
        assert '"pw"' not in str(error)
    assert str(errors[0]).startswith('configuration error: provider "peer", field')
    assert str(errors[2]).startswith('configuration error: provider "peer", field')


def test_a_reserved_authorization_parameter_is_the_same_error_everywhere() -> None:
    browser = tessera.Browser(authorization_params={"state": "mine"})
    with pytest.raises(tessera.ConfigurationError) as from_client:
        tessera.SyncClient(ISSUER, client_id="cli", grant=browser, key="peer")
    with pytest.raises(tessera.ConfigurationError) as from_json:
        NativeEngine().register(
            "peer", {"type": "browser", "issuer": ISSUER, "client_id": "cli", "authorization_params": {"state": "mine"}}
        )
    for error in (from_client.value, from_json.value):
        assert str(error).endswith(RESERVED_PARAM), str(error)
        assert "mine" not in str(error)


def test_old_keywords_still_work_and_warn_with_the_new_name() -> None:
    cases = [
        (lambda: tessera.Endpoints.explicit(token_url="https://idp.example/token"), "token_url is deprecated: use token_endpoint"),
        (lambda: tessera.DeviceCode(device_authorization_url="https://idp.example/device"), "use device_authorization_endpoint"),
        (lambda: tessera.Browser(extra_params={"prompt": "consent"}), "extra_params is deprecated: use authorization_params"),
        (lambda: tessera.Browser(port=8400), "port is deprecated: use redirect_port"),
        (lambda: tessera.EmailOtp("a@example.com", max_attempts=2), "max_attempts is deprecated: use max_code_attempts"),
        (lambda: tessera.Cognito(endpoint="https://cognito.example/", username="u", password="p"), "use endpoint_url"),
        (lambda: tessera.ClientAuth("c", "s", method="post"), 'client_auth "post" is deprecated: use "client_secret_post"'),
        (lambda: tessera.SyncClient(token_url="https://idp.example/token", client_id="c", client_secret="s"), "use token_endpoint"),
    ]
    for build, expected in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            built = build()
        assert built is not None
        messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
        assert any(expected in message for message in messages), (expected, messages)
    # The new names say nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tessera.Endpoints.explicit("https://idp.example/token", revocation_endpoint="https://idp.example/revoke")
        tessera.Browser(authorization_params={"prompt": "consent"}, redirect_port=8400, login_timeout=60)
        tessera.EmailOtp("a@example.com", max_code_attempts=2)
        tessera.ClientAuth("c", "s", method="client_secret_post")
    # Both spellings at once are refused (also for keywords that have a default).
    with pytest.raises(tessera.ConfigurationError, match="give only token_endpoint"):
        tessera.Endpoints.explicit("https://idp.example/token", token_url="https://idp.example/token")
    with pytest.raises(tessera.ConfigurationError, match="give only redirect_port"):
        tessera.Browser(redirect_port=8080, port=9090)
    with pytest.raises(tessera.ConfigurationError, match="give only max_code_attempts"):
        tessera.EmailOtp("a@example.com", max_code_attempts=5, max_attempts=2)


def test_a_provider_built_from_classes_gets_every_rule_a_description_gets() -> None:
    """Python builds a ProviderConfig from objects; the TOML/JSON description rules apply to it too."""
    token = "https://idp.example/token"
    cases = [
        (tessera.DeviceCode(), {"type": "device_code", "client_id": "cli", "token_endpoint": token}),
        (tessera.EmailOtp("a@example.com"), {"type": "email_otp", "client_id": "cli", "token_endpoint": token, "email": "a@example.com"}),
        (tessera.ClientCredentials(), {"type": "client_credentials", "client_id": "cli", "token_endpoint": token}),
    ]
    for grant, description in cases:
        with pytest.raises(tessera.ConfigurationError) as from_python:
            tessera.ProviderConfig(tessera.ClientAuth("cli"), tessera.Endpoints.explicit(token), grant)
        with pytest.raises(tessera.ConfigurationError) as from_json:
            NativeEngine().register("peer", description)
        suffix = str(from_json.value).split(", ", 1)[1]
        assert str(from_python.value).endswith(suffix), (str(from_python.value), suffix)


def test_the_json_engines_first_shape_warns() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        NativeEngine().register(
            "k", json.dumps({"client_id": "c", "client_secret": "s", "token_url": "https://idp.example/token",
                             "grant": {"type": "client_credentials"}})
        )
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any('provider "k": token_url is deprecated: use token_endpoint' in m for m in messages), messages
