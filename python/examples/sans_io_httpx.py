"""The sans-I/O engine driven by httpx: tessera decides, the host sends. The same loop serves
every grant: it sends `http_request`s, sleeps on `wait`, and answers `prompt`s that expect an
answer (a one-time code, or the URL a browser came back to) with a `prompt_answer` event.

Environment: TESSERA_ISSUER, CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD, EMAIL (for the emailed-code
login; the code is typed, or read from OTP_OUTBOX, the reference IdP's test outbox, when it is set).
"""

import base64
import os
import secrets
import time
from typing import Callable, Dict, List, Optional

import httpx

from tessera.native import Action, NativeEngine

Answer = Callable[[Dict[str, object]], str]


def run(engine: NativeEngine, actions: List[Action], http: httpx.Client, answer: Optional[Answer] = None) -> Action:
    """Drives actions until `done`, `failed` or `logged_out` (at most 50 steps)."""
    for _ in range(50):
        if not actions:
            raise RuntimeError("the engine stopped without an outcome")
        action = actions.pop(0)
        kind = action["type"]
        if kind == "http_request":
            try:
                response = http.request(action["method"], action["url"], headers=action["headers"],
                                        content=action.get("body"))
                event: Dict[str, object] = {
                    "type": "http_response", "request_id": action["id"], "status": response.status_code,
                    "headers": dict(response.headers), "body": response.text,
                }
            # `connect` only when nothing was sent: a refresh that failed after sending may have
            # been processed, and the engine then never presents that refresh token again.
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
                event = {"type": "transport_error", "request_id": action["id"], "kind": "connect",
                         "message": str(error)}
            except httpx.TimeoutException as error:
                event = {"type": "transport_error", "request_id": action["id"], "kind": "timeout",
                         "message": str(error)}
            except httpx.TransportError as error:
                event = {"type": "transport_error", "request_id": action["id"], "kind": "connection_closed",
                         "message": str(error)}
            actions = engine.handle(event)
        elif kind == "wait":
            time.sleep(max(0, action["until_ms"] - time.time() * 1000) / 1000)
            actions = engine.handle({"type": "timer", "key": action["key"]})
        elif kind == "prompt" and action["expects_answer"]:
            if answer is None:
                actions = engine.handle({"type": "prompt_failed", "key": action["key"], "message": "nobody to ask"})
            else:
                actions = engine.handle({"type": "prompt_answer", "key": action["key"], "answer": answer(action)})
        elif kind == "prompt":
            print("show:", action["prompt"])  # a device code: polling goes on by itself
        else:
            return action
    raise RuntimeError("the engine did not finish in 50 steps")


engine = NativeEngine()
engine.register("alice", {
    "issuer": os.environ["TESSERA_ISSUER"],
    "client_id": os.environ["CLIENT_ID"],
    "client_secret": os.environ["CLIENT_SECRET"],
    "scope": "openid",
    "grant": {"type": "password", "username": os.environ["USERNAME"], "password": os.environ["PASSWORD"]},
})

with httpx.Client(timeout=10, follow_redirects=False) as http:
    done = run(engine, engine.ensure("alice"), http)
    print("login:", done["type"], "token type:", done["tokens"]["token_type"])
    print("cached:", engine.ensure("alice") == [])
    # login_with: the host makes the randomness (and, for browser logins, runs the redirect listener).
    inputs = {"random_base64": base64.b64encode(secrets.token_bytes(64)).decode()}
    again = run(engine, engine.login_with("alice", inputs), http)
    print("login_with:", again["type"], "new token:", again["tokens"]["access_token"] != done["tokens"]["access_token"])
    refreshed = run(engine, engine.refresh("alice"), http)
    print("refresh:", refreshed["type"])
    out = run(engine, engine.logout("alice"), http)
    print("logout:", out["type"], "revoked:", out.get("revoked"))

    # An emailed one-time code: the engine asks (`prompt` with expects_answer), the host answers.
    engine.register("mail", {
        "issuer": os.environ["TESSERA_ISSUER"],
        "client_id": "tessera-cli",
        "scope": "openid",
        "grant": {"type": "email_otp", "email": os.environ["EMAIL"]},
    })

    def code(action: Dict[str, object]) -> str:
        outbox = os.environ.get("OTP_OUTBOX")
        if outbox:
            return http.get(outbox).json()[-1]["code"]
        return input(f"code sent to {action['prompt']['destination']}: ")  # type: ignore[index]

    mailed = run(engine, engine.login_with("mail", inputs), http, answer=code)
    print("email code:", mailed["type"], *([mailed["error"]["message"]] if mailed["type"] == "failed" else []))
