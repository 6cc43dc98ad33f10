"""Protocols for objects tessera calls back: token stores, refresh policies, refresh hooks,
prompters and custom providers. Every method may be sync or ``async def``: sync ones never run on
the event loop's thread, async ones are awaited on the loop of the call that needs them (with the
sync API, run by ``asyncio.run``)."""

from __future__ import annotations

from typing import Any, Awaitable, Dict, Optional, Protocol, Union, runtime_checkable

from ._tessera import (
    BasicCredential,
    BrowserPrompt,
    CodePrompt,
    DeviceCodePrompt,
    OAuthCredential,
    RefreshContext,
    RefreshFailureAction,
    TokenSet,
)

__all__ = [
    "AsyncTokenStore",
    "BrowserPrompter",
    "LoadedTokens",
    "OtpCallback",
    "Prompter",
    "Provider",
    "RefreshHooks",
    "RefreshPolicy",
    "TokenStore",
]

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


@runtime_checkable
class RefreshPolicy(Protocol):
    """Decides what happens when a silent refresh fails (``refresh_policy=``).

    Return ``RefreshFailureAction.RAISE`` (daemons: a typed error, never a prompt),
    ``RefreshFailureAction.REAUTHENTICATE`` (log in again, with the prompter if a person is
    needed) or ``RefreshFailureAction.retry_after(seconds)``. It may be ``async def``. An exception
    raised here is raised to the caller instead of the refresh error.
    """

    def on_refresh_failure(
        self, context: RefreshContext, error: Exception
    ) -> Union[RefreshFailureAction, Awaitable[RefreshFailureAction]]: ...


class OnRefreshStart(Protocol):
    def on_refresh_start(self, context: RefreshContext) -> Optional[Awaitable[None]]: ...


class OnRefreshSuccess(Protocol):
    def on_refresh_success(self, context: RefreshContext, tokens: TokenSet) -> Optional[Awaitable[None]]: ...


class OnRefreshFailure(Protocol):
    def on_refresh_failure(self, context: RefreshContext, error: Exception) -> Optional[Awaitable[None]]: ...


#: Observers of every refresh (``hooks=``): an object with any of ``on_refresh_start(context)``,
#: ``on_refresh_success(context, tokens)``, ``on_refresh_failure(context, error)``, each sync or
#: ``async def``. An exception raised by a hook fails the operation with that exception.
RefreshHooks = Union[OnRefreshStart, OnRefreshSuccess, OnRefreshFailure]


class Prompter(Protocol):
    """Shows what a person must do to approve an interactive login (``prompter=``): sync or async.
    Return promptly: tessera polls the server after it returns."""

    def __call__(self, prompt: DeviceCodePrompt) -> Optional[Awaitable[None]]: ...


class BrowserPrompter(Protocol):
    """Opens a browser login's URL (``prompter=`` with a ``Browser`` grant): sync or async. With a
    loopback receiver (``prompt.expects_answer`` false) return promptly; in paste mode return the
    full URL the browser ended on."""

    def __call__(self, prompt: BrowserPrompt) -> Union[None, str, Awaitable[Optional[str]]]: ...


class OtpCallback(Protocol):
    """Returns the one-time code a person received (``otp_callback=``): sync or async. Called
    again with ``attempt`` + 1 and ``previous_error`` after a wrong code; raising ends the login
    with that exception."""

    def __call__(self, prompt: CodePrompt) -> Union[str, Awaitable[str]]: ...


class Provider(Protocol):
    """A provider type written in Python, returned by a factory given to
    ``Registry.register_factory``. Required: ``is_authenticated()`` and ``credential()``. Optional:
    ``description()``, ``status()``, ``auth_context()`` (its ``url``, ``issuer`` or
    ``token_endpoint`` is what ``AuthClient.logged_in`` reports), ``extra_info()``, ``login()``,
    ``logout()``, ``refresh(force)``, ``can_refresh()``, ``get_headers()`` (a mapping of header
    names to values: ``AuthClient.headers(name)``) and ``token()`` (a ``str`` or a ``TokenSet``:
    ``AuthClient.token(name)``). Any may be ``async def``."""

    def is_authenticated(self) -> Union[bool, Awaitable[bool]]: ...

    def credential(
        self,
    ) -> Union[BasicCredential, OAuthCredential, Awaitable[Union[BasicCredential, OAuthCredential]]]: ...

