"""Protocols for objects tessera calls back: token stores, sync or async."""

from __future__ import annotations

from typing import Any, Dict, Protocol, Union, runtime_checkable

from ._tessera import TokenSet

__all__ = ["TokenStore", "AsyncTokenStore", "LoadedTokens"]

#: What ``load`` may return: a TokenSet, its ``to_json()`` text, a dict of that JSON, or None.
LoadedTokens = Union[TokenSet, str, Dict[str, Any], None]


@runtime_checkable
class TokenStore(Protocol):
    """A store with sync methods: tessera calls them on a worker thread, never on the event loop.

    ``clear`` is optional: without it, ``clear()``/``logout()`` forget the tokens in memory only.
    """

    def load(self, key: str) -> LoadedTokens: ...

    def save(self, key: str, tokens: TokenSet) -> None: ...


@runtime_checkable
class AsyncTokenStore(Protocol):
    """A store with ``async def`` methods: awaited on the event loop of the call that needs them
    (with the sync API, run by ``asyncio.run`` on a worker thread)."""

    async def load(self, key: str) -> LoadedTokens: ...

    async def save(self, key: str, tokens: TokenSet) -> None: ...
