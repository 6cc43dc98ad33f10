"""The sans-I/O engine (tessera.native) driven by Python's urllib: login, refresh with
rotation, logout with revocation, and typed errors for malformed input."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional

import pytest

import tessera
from conftest import ALICE, CLIENT_ID, CLIENT_SECRET, Idp
from tessera.native import JsonEngine, NativeEngine


def send(action: Dict[str, Any]) -> Dict[str, Any]:
    request = urllib.request.Request(
        action["url"],
        data=action["body"].encode() if action["method"] == "POST" else None,
        method=action["method"],
        headers=action["headers"],
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, body = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, body = error.code, error.headers, error.read()
    except OSError as error:
        return {"type": "transport_error", "request_id": action["id"], "kind": "connect", "message": str(error)}
    return {
        "type": "http_response",
        "request_id": action["id"],
        "status": status,
        "headers": {name.lower(): value for name, value in headers.items()},
        "body": body.decode(),
    }


def drive(engine: NativeEngine, actions: List[Dict[str, Any]], max_steps: int = 20) -> Dict[str, Any]:
    """Runs actions until a final one (done, failed, logged_out); returns it."""
    for _ in range(max_steps):
        action = actions.pop(0)
        if action["type"] == "http_request":
            actions = engine.handle(send(action))
        elif action["type"] == "wait":
            time.sleep(max(0, action["until_ms"] - tessera.current_time_ms()) / 1000)
            actions = engine.handle({"type": "timer", "key": action["key"]})
        else:
            return action
    raise AssertionError("the engine did not finish")


def test_json_loop_with_urllib(idp: Idp) -> None:
    engine = NativeEngine()
    engine.register(
        "alice",
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "issuer": idp.issuer,
            "scope": "openid api:read",
            "grant": {"type": "password", "username": ALICE[0], "password": ALICE[1]},
        },
    )
    done = drive(engine, engine.ensure("alice"))
    assert done["type"] == "done" and done["key"] == "alice"
    first = done["tokens"]
    assert first["access_token"] and first["refresh_token"] and first["expires_at"] > tessera.current_time_ms()
    assert engine.ensure("alice") == [], "cached and valid"

    refreshed = drive(engine, engine.refresh("alice"))["tokens"]
    assert refreshed["access_token"] != first["access_token"]
    assert refreshed["refresh_token"] != first["refresh_token"], "rotated"

    # Persist and restore, as a host would across restarts.
    saved = engine.tokens("alice")
    assert saved is not None and saved["access_token"] == refreshed["access_token"]
    restored = NativeEngine()
    restored.register("alice", json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": idp.issuer, "grant": {"type": "client_credentials"}}))
    restored.set_tokens("alice", saved)
    assert restored.ensure("alice") == []

    out = drive(engine, engine.logout("alice"))
    assert out["type"] == "logged_out" and out["revoked"] is True
    assert engine.tokens("alice") is None
    stats = idp.stats()
    assert (stats["password_grants"], stats["refresh_grants"], stats["revocations"]) == (1, 1, 1)


def test_failures_are_actions_and_bad_input_raises(idp: Idp) -> None:
    engine = NativeEngine()
    engine.register(
        "bad",
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "token_url": idp.url("/token"),
         "grant": {"type": "password", "username": "alice", "password": "nope"}},
    )
    failed = drive(engine, engine.ensure("bad"))
    assert failed["type"] == "failed"
    assert (failed["error"]["kind"], failed["error"]["code"], failed["error"]["transient"]) == ("oauth", "invalid_grant", False)

    with pytest.raises(tessera.ConfigurationError) as raised:
        engine.register("x", '{"client_id": "c", "grant": {"type": "password", "password": "hunter2-secret"}')
    assert "hunter2-secret" not in str(raised.value)
    with pytest.raises(tessera.MalformedResponseError):
        engine.handle('{"type": "nonsense"}')

    raw = JsonEngine()
    raw.register("s", json.dumps({"client_id": "c", "token_url": "http://127.0.0.1:1/token", "grant": {"type": "static", "access_token": "abc"}}))
    actions = json.loads(raw.ensure("s", tessera.current_time_ms()))
    assert actions[0]["type"] == "done" and actions[0]["tokens"]["access_token"] == "abc"




def test_a_lost_refresh_answer_tells_the_host_to_drop_the_refresh_token(idp: Idp) -> None:
    engine = NativeEngine()
    engine.register(
        "rt",
        {"type": "refresh_token", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
         "token_endpoint": idp.url("/token"), "refresh_token": "configured-refresh-token"},
    )
    engine.set_tokens("rt", {"access_token": "a", "expires_at": 1000, "refresh_token": "held-refresh-token",
                             "issued_at": 0})
    [request] = engine.ensure("rt")
    assert request["type"] == "http_request" and "refresh_token=held-refresh-token" in request["body"]
    # The request was sent; its answer never came back.
    actions = engine.handle({"type": "transport_error", "request_id": request["id"], "kind": "timeout",
                             "message": "no answer"})
    [failed] = actions
    assert (failed["type"], failed["refresh_token_dropped"]) == ("failed", "outcome_unknown")
    assert (failed["error"]["kind"], failed["error"]["transient"]) == ("reauthentication_required", False)
    assert "held-refresh-token" not in json.dumps(actions)


def test_the_whole_chain_with_urllib_and_a_401_from_a_domain(idp: Idp) -> None:
    engine = NativeEngine()
    engine.register("network", {"type": "password", "issuer": idp.issuer, "client_id": CLIENT_ID,
                                "client_secret": CLIENT_SECRET, "username": ALICE[0], "password": ALICE[1]})
    engine.register_chain("domains", {
        "network": "network",
        "discovery": {"type": "http_call", "url": idp.url("/chain/discovery")},
        "domain": {"type": "http_call", "url": idp.url("/chain/domains/{domain_id}/access")},
    })

    def access(actions: List[Dict[str, Any]]) -> Dict[str, Any]:
        while actions:
            action = actions.pop(0)
            if action["type"] == "http_request":
                actions += engine.handle(send(action))
            else:
                return action
        raise AssertionError("no outcome")

    alpha = access(engine.domain_access("domains", "alpha"))
    assert (alpha["type"], alpha["domain_id"], alpha["domain_access"]["name"]) == ("done", "alpha", "Alpha Domain"), alpha
    assert engine.domain_access("domains", "alpha") == [alpha], "a fresh access comes back at once"
    # The domain's server refused alpha's token: alpha alone is derived again.
    before = idp.stats()
    again = access(engine.refresh_domain_access("domains", "alpha"))
    assert again["domain_access"]["access_token"] != alpha["domain_access"]["access_token"]
    after = idp.stats()
    assert (after["chain_domain_access_requests"] - before["chain_domain_access_requests"],
            after["chain_discovery_requests"] - before["chain_discovery_requests"],
            after["password_grants"] - before["password_grants"]) == (1, 0, 0), after
    assert engine.cached_domain_access("domains", "alpha") == again["domain_access"]
    # Unknown domain: failed at the domain stage, typed; bad input raises.
    unknown = access(engine.domain_access("domains", "omega"))
    assert (unknown["type"], unknown["stage"], unknown["error"]["kind"]) == ("failed", "domain", "oauth"), unknown
    with pytest.raises(tessera.ConfigurationError, match="network"):
        engine.register_chain("other", {"network": "nope", "discovery": {"type": "http_call", "url": "u"},
                                        "domain": {"type": "http_call", "url": "u"}})
    # The state document restores into a new engine, which serves alpha without a request.
    state = engine.chain_state("domains")
    assert state is not None and ALICE[1] not in state and CLIENT_SECRET not in state
    fresh = NativeEngine()
    fresh.register("network", {"type": "client_credentials", "issuer": idp.issuer, "client_id": CLIENT_ID,
                               "client_secret": CLIENT_SECRET})
    fresh.register_chain("domains", {"network": "network", "discovery": {"type": "http_call", "url": "u"},
                                     "domain": {"type": "http_call", "url": "u/{domain_id}"}})
    fresh.set_chain_state("domains", state)
    assert fresh.domain_access("domains", "alpha")[0]["domain_access"] == again["domain_access"]
