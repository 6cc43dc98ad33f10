"""The sans-I/O engine: tessera decides what must happen, you do the I/O (docs/sans-io-json.md).

``NativeEngine`` speaks dicts; ``JsonEngine`` (same methods) speaks JSON text. A complete loop
with only the standard library::

    import json, urllib.request, urllib.error
    from tessera.native import NativeEngine

    engine = NativeEngine()
    engine.register("alice", {"type": "password", "client_id": "...", "client_secret": "...",
                              "issuer": "...", "username": "alice", "password": "..."})
    actions = engine.ensure("alice")
    while actions:
        action = actions.pop(0)
        if action["type"] == "http_request":
            ...  # send it, then: actions = engine.handle({"type": "http_response", ...})
        elif action["type"] == "done":
            tokens = action["tokens"]
"""

from __future__ import annotations

import base64
import json
import os
import weakref
from typing import Any, Dict, List, Mapping, Optional, Union

from ._tessera import JsonEngine, current_time_ms, is_expired, is_near_expiry

__all__ = ["Action", "Event", "JsonEngine", "NativeEngine", "current_time_ms", "is_expired", "is_near_expiry"]

#: An action (engine → host): ``http_request``, ``wait``, ``prompt``, ``done``, ``failed`` or
#: ``logged_out``; any may carry ``refresh_token_dropped`` (delete the stored refresh token); a
#: chain's ``done`` / ``failed`` also carry ``domain_id`` (and ``domain_access`` / ``stage``).
Action = Dict[str, Any]
#: An event (host → engine): ``http_response``, ``transport_error``, ``timer``, ``prompt_answer``
#: (``key``, ``answer``: the code, or the URL the browser came back to) or ``prompt_failed``.
Event = Mapping[str, Any]


def _text(value: Union[str, Mapping[str, Any]]) -> str:
    return value if isinstance(value, str) else json.dumps(value)


#: Every live NativeEngine, re-seeded in a forked child (below).
_ENGINES: "weakref.WeakSet[NativeEngine]" = weakref.WeakSet()


def _reseed_after_fork() -> None:
    # A forked child (gunicorn --preload, multiprocessing's fork) starts with its parent's seed and
    # counter: without new entropy it would send the parent's next client-assertion jti values,
    # which the server refuses as replays.
    for engine in list(_ENGINES):
        engine.set_entropy(os.urandom(32))


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_after_fork)


class NativeEngine:
    """The token engine as dicts in, lists of action dicts out. Times are Unix milliseconds;
    ``now_ms`` defaults to the current time. Not thread-safe: drive it from one thread. A forked
    child process gets new entropy for client assertions by itself."""

    def __init__(self) -> None:
        self._engine = JsonEngine()
        _ENGINES.add(self)

    def register(self, key: str, provider: Union[str, Mapping[str, Any]]) -> None:
        """Registers a provider under ``key`` (raises ConfigurationError when it is malformed)."""
        self._engine.register(key, _text(provider))

    def set_entropy(self, entropy: bytes) -> None:
        """Replaces the random bytes (at least 32, from a cryptographically secure generator)
        that client assertions' ``jti`` values are derived from. Not needed: the engine draws 32
        from the operating system (what ``os.urandom`` reads) when it is created."""
        self._engine.set_entropy(base64.b64encode(entropy).decode("ascii"))

    def ensure(self, key: str, now_ms: Optional[int] = None) -> List[Action]:
        """What must happen for ``key`` to hold a valid token; ``[]`` when it does."""
        return self._actions(self._engine.ensure(key, now_ms))

    def refresh(self, key: str, now_ms: Optional[int] = None) -> List[Action]:
        """A refresh now (after a 401)."""
        return self._actions(self._engine.refresh(key, now_ms))

    def login(self, key: str, now_ms: Optional[int] = None) -> List[Action]:
        """A fresh login with the grant."""
        return self._actions(self._engine.login(key, now_ms))

    def login_with(
        self, key: str, inputs: Union[str, Mapping[str, Any]], now_ms: Optional[int] = None
    ) -> List[Action]:
        """A fresh login with inputs the host made: ``{"random_base64": ..., "redirect_uri": ...}``
        (64 random bytes, base64, for PKCE, state and nonce; and where the browser comes back, e.g.
        the host's own loopback listener). Browser logins need both; other grants ignore them."""
        return self._actions(self._engine.login_with(key, _text(inputs), now_ms))

    def logout(self, key: str, now_ms: Optional[int] = None) -> List[Action]:
        """A logout (RFC 7009 revocation when the server has an endpoint)."""
        return self._actions(self._engine.logout(key, now_ms))

    def handle(self, event: Union[str, Event], now_ms: Optional[int] = None) -> List[Action]:
        """Feeds an event back; returns the next actions."""
        return self._actions(self._engine.handle(_text(event), now_ms))

    def tokens(self, key: str) -> Optional[Dict[str, Any]]:
        """The tokens of ``key`` (secrets in clear: persist them, never log them)."""
        text = self._engine.tokens(key)
        return None if text is None else dict(json.loads(text))

    def set_tokens(self, key: str, tokens: Union[str, Mapping[str, Any], None]) -> None:
        """Restores (or with None forgets) the tokens of ``key``."""
        self._engine.set_tokens(key, None if tokens is None else _text(tokens))

    def register_chain(self, key: str, chain: Union[str, Mapping[str, Any]]) -> None:
        """Registers a token chain under ``key``: ``{"network": <a registered provider's key>,
        "discovery": stage, "domain": stage, "refresh_threshold_ms"?: ..., "max_attempts"?: ...}``,
        each stage ``{"type": "http_call", "url": ...}`` or ``{"type": "token_exchange", ...}``
        (``{domain_id}`` in the domain stage is replaced). Raises ConfigurationError when malformed."""
        self._engine.register_chain(key, _text(chain))

    def domain_access(self, key: str, domain_id: str, now_ms: Optional[int] = None) -> List[Action]:
        """The whole chain's actions for access to ``domain_id`` (network login, discovery, domain:
        each only when its own token needs it), ending in ``done`` (with ``domain_id`` and
        ``domain_access``) or ``failed`` (with ``domain_id`` and ``stage``). A fresh cached access
        is ``[done]`` at once; ``[]`` means one for that domain is in flight already."""
        return self._actions(self._engine.domain_access(key, domain_id, now_ms))

    def refresh_domain_access(self, key: str, domain_id: str, now_ms: Optional[int] = None) -> List[Action]:
        """After the domain's server answered 401: a new access (the stages above are renewed only
        if they are refused too)."""
        return self._actions(self._engine.refresh_domain_access(key, domain_id, now_ms))

    def cached_domain_access(self, key: str, domain_id: str, now_ms: Optional[int] = None) -> Optional[Dict[str, Any]]:
        """The cached access to ``domain_id`` while valid (``id``, ``name``, ``domain_server``,
        ``access_token``, ``token_type``, ``expires_at``, ``issued_at``), without any request."""
        text = self._engine.cached_domain_access(key, domain_id, now_ms)
        return None if text is None else dict(json.loads(text))

    def chain_state(self, key: str) -> Optional[str]:
        """Every stage's tokens of chain ``key`` as a JSON document (no credentials; tokens in clear)."""
        return self._engine.chain_state(key)

    def set_chain_state(self, key: str, state: str) -> None:
        """Restores a document of ``chain_state`` (or ``DomainClient.save_state``) into chain ``key``."""
        self._engine.set_chain_state(key, state)

    @staticmethod
    def _actions(text: str) -> List[Action]:
        return list(json.loads(text))

    def __repr__(self) -> str:
        return "NativeEngine()"
