"""``httpx.Auth`` for tessera: adds the ``Authorization`` header; after a 401, refreshes once
(shared with every concurrent caller) and retries the request once.

    client = tessera.Client(...)                       # or tessera.SyncClient(...)
    async with httpx.AsyncClient(auth=tessera.httpx.Auth(client)) as http:
        await http.get("https://api.example.com/me")
    with httpx.Client(auth=tessera.httpx.Auth(client)) as http:   # the same Auth serves both
        http.get("https://api.example.com/me")
"""

from __future__ import annotations

from typing import AsyncGenerator, Generator, Union

import httpx

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
        request.headers["Authorization"] = self._sync.authorization_header()
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = self._sync.force_refresh()
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = await self._async.authorization_header()
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = await self._async.force_refresh()
            yield request

    def __repr__(self) -> str:
        return f"tessera.httpx.Auth({self._sync!r})"
