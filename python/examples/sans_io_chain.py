"""The whole token chain, sans-I/O, driven by httpx: tessera plans every request of network login →
discovery → domain access, the host sends them and hands back the answers, as with auki's
NativeClient (get_domain_access / handle_events / get_cached_domain_access).

Environment: TESSERA_ISSUER (the reference IdP: its /chain/* endpoints), CLIENT_ID, CLIENT_SECRET,
USERNAME, PASSWORD.
"""

import os
import time
from typing import Any, Dict, List

import httpx

from tessera.native import Action, NativeEngine

issuer = os.environ["TESSERA_ISSUER"]
engine = NativeEngine()
# The network login: any grant of the one provider description (password, client credentials, ...).
engine.register("network", {
    "type": "password", "issuer": issuer, "scope": "openid",
    "client_id": os.environ["CLIENT_ID"], "client_secret": os.environ["CLIENT_SECRET"],
    "username": os.environ["USERNAME"], "password": os.environ["PASSWORD"],
})
# Two derived stages: each an HTTP call with the stage above's token as bearer (or an RFC 8693 exchange).
engine.register_chain("domains", {
    "network": "network",
    "discovery": {"type": "http_call", "url": issuer + "/chain/discovery"},
    "domain": {"type": "http_call", "url": issuer + "/chain/domains/{domain_id}/access"},
})


def now_ms() -> int:
    return int(time.time() * 1000)


def send(http: httpx.Client, action: Action) -> Dict[str, object]:
    """One `http_request` action as an event: the answer, or what went wrong."""
    try:
        response = http.request(action["method"], action["url"], headers=action["headers"],
                                content=action["body"] or None)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:  # nothing was sent
        return {"type": "transport_error", "request_id": action["id"], "kind": "connect", "message": str(error)}
    except httpx.TimeoutException as error:
        return {"type": "transport_error", "request_id": action["id"], "kind": "timeout", "message": str(error)}
    except httpx.TransportError as error:
        return {"type": "transport_error", "request_id": action["id"], "kind": "connection_closed",
                "message": str(error)}
    return {"type": "http_response", "request_id": action["id"], "status": response.status_code,
            "headers": dict(response.headers), "body": response.text}


def get_domain_access(http: httpx.Client, domain_id: str) -> Action:
    """auki's loop: ask, carry out the actions, hand back the events, until this domain's outcome."""
    actions: List[Action] = engine.domain_access("domains", domain_id, now_ms())
    while actions:
        action = actions.pop(0)
        if action["type"] == "http_request":
            actions += engine.handle(send(http, action), now_ms())
        elif action["type"] == "wait":  # a transient failure: retried after a pause
            time.sleep(max(0, action["until_ms"] - now_ms()) / 1000)
            actions += engine.handle({"type": "timer", "key": action["key"]}, now_ms())
        elif action["type"] in ("done", "failed") and action.get("domain_id") == domain_id:
            return action
    raise RuntimeError("the chain stopped without an outcome")


with httpx.Client(timeout=10, follow_redirects=False) as http:
    accesses: Dict[str, Any] = {}
    for domain_id in ("alpha", "beta"):
        outcome = get_domain_access(http, domain_id)
        if outcome["type"] == "failed":
            raise SystemExit(f"{domain_id}: failed at the {outcome['stage']} stage: {outcome['error']['message']}")
        access = accesses[domain_id] = outcome["domain_access"]
        # Use it: the domain's own server accepts its token (and no other domain's).
        resource = http.get(access["domain_server"]["url"] + "/resource",
                            headers={"authorization": f"{access['token_type']} {access['access_token']}"})
        print(f"{domain_id}: {access['name']}, resource answered {resource.status_code}")

    # Later: the cache serves both, without a request.
    for domain_id in ("alpha", "beta"):
        cached = engine.cached_domain_access("domains", domain_id)
        print(f"cached {domain_id}:", cached is not None and cached["access_token"] == accesses[domain_id]["access_token"])
