"""``httpx.Auth`` for tessera: adds the ``Authorization`` header; after a 401, refreshes once
(shared with every concurrent caller) and retries the request once. After a 403 (or 401) saying
``insufficient_scope`` with ``scope="…"`` (RFC 6750 §3.1), a step-up: a login for the wider scope
when a person can be asked (or none is needed), then the request once more; else the typed
``AuthenticationError`` (``code == "insufficient_scope"``). (Bearer providers; a DPoP provider's
403 comes back as it is.)

For a DPoP provider (``dpop=True``, docs/dpop.md) every request, and every retry, carries
``Authorization: DPoP <token>`` and a fresh ``DPoP`` proof for its method and URL, with the last
nonce that server gave; a 401 asking for a nonce (``use_dpop_nonce``) is sent again once with it.

    client = tessera.Client(...)                       # or tessera.SyncClient(...)
    async with httpx.AsyncClient(auth=tessera.httpx.Auth(client)) as http:
        await http.get("https://api.example.com/me")
    with httpx.Client(auth=tessera.httpx.Auth(client)) as http:   # the same Auth serves both
        http.get("https://api.example.com/me")
"""

from __future__ import annotations

from typing import AsyncGenerator, Generator, Mapping, MutableMapping, Union

import httpx

from ._errors import _raise_if_still_insufficient
from ._tessera import Client, SyncClient

__all__ = ["Auth"]


class Auth(httpx.Auth):
    """Bearer authentication from a tessera ``Client`` or ``SyncClient`` (sync and async flows)."""

    requires_request_body = False
    requires_response_body = False

    def __init__(self, client: Union[Client, SyncClient]) -> None:
        if isinstance(client, Client):
            self._async, self._sync = client, client.sync
        elif isinstance(client, SyncClient):
            self._async, self._sync = client.aio, client
        else:
            raise TypeError("tessera.httpx.Auth needs a tessera.Client or tessera.SyncClient")

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._sync.uses_dpop:
            yield from self._sync_dpop_flow(request)
            return
        request.headers["Authorization"] = self._sync.authorization_header()
        response = yield request
        stepped = None
        if response.status_code in (401, 403):
            stepped = self._sync.step_up(str(request.url), response.status_code, _www_authenticate(response))
        if stepped is not None:
            request.headers["Authorization"] = stepped
            response = yield request
            self._still_insufficient(request, response)
        elif response.status_code == 401:
            request.headers["Authorization"] = self._sync.force_refresh()
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._async.uses_dpop:
            method, url = request.method, str(request.url)
            _authorize(request.headers, await self._async.request_headers(method, url))
            response = yield request
            nonce_demanded = self._nonce_demanded(request, response)
            if nonce_demanded:
                _authorize(request.headers, await self._async.request_headers(method, url))
                response = yield request
                nonce_demanded = self._nonce_demanded(request, response)
            # A nonce challenge is not a rejected token: no refresh (the nonce is remembered).
            if response.status_code == 401 and not nonce_demanded:
                await self._async.force_refresh()
                _authorize(request.headers, await self._async.request_headers(method, url))
                response = yield request
                self._nonce_demanded(request, response)
            return
        request.headers["Authorization"] = await self._async.authorization_header()
        response = yield request
        stepped = None
        if response.status_code in (401, 403):
            stepped = await self._async.step_up(str(request.url), response.status_code, _www_authenticate(response))
        if stepped is not None:
            request.headers["Authorization"] = stepped
            response = yield request
            self._still_insufficient(request, response)
        elif response.status_code == 401:
            request.headers["Authorization"] = await self._async.force_refresh()
            yield request

    def _still_insufficient(self, request: httpx.Request, response: httpx.Response) -> None:
        """After one step-up the scope is still missing: the typed error, never a second login."""
        _raise_if_still_insufficient(str(request.url), response.status_code, _www_authenticate(response))

    def _nonce_demanded(self, request: httpx.Request, response: httpx.Response) -> bool:
        return self._sync.observe_dpop_response(
            str(request.url),
            response.status_code,
            response.headers.get("www-authenticate"),
            response.headers.get("dpop-nonce"),
        )

    def _sync_dpop_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        method, url = request.method, str(request.url)
        _authorize(request.headers, self._sync.request_headers(method, url))
        response = yield request
        nonce_demanded = self._nonce_demanded(request, response)
        if nonce_demanded:
            _authorize(request.headers, self._sync.request_headers(method, url))
            response = yield request
            nonce_demanded = self._nonce_demanded(request, response)
        # A nonce challenge is not a rejected token: no refresh (the nonce is remembered).
        if response.status_code == 401 and not nonce_demanded:
            self._sync.force_refresh()
            _authorize(request.headers, self._sync.request_headers(method, url))
            response = yield request
            self._nonce_demanded(request, response)

    def __repr__(self) -> str:
        return f"tessera.httpx.Auth({self._sync!r})"


def _www_authenticate(response: httpx.Response) -> str:
    """Every ``WWW-Authenticate`` field of an answer, joined (RFC 9110 §5.3)."""
    return ", ".join(response.headers.get_list("www-authenticate"))


def _authorize(headers: MutableMapping[str, str], auth: Mapping[str, str]) -> None:
    """Puts ``auth`` (``Authorization`` and, for a DPoP token, ``DPoP``) on a request, dropping the
    proof of an earlier token: a refreshed token may come back as Bearer (RFC 9449 §5)."""
    headers.pop("DPoP", None)
    headers.update(auth)
