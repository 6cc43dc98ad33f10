"""``requests.auth.AuthBase`` for tessera: adds the ``Authorization`` header; after a 401,
refreshes once (shared with every concurrent caller) and resends the request once.

    session = requests.Session()
    session.auth = tessera.requests.Auth(tessera.SyncClient(...))
    session.get("https://api.example.com/me")
"""

from __future__ import annotations

from typing import Any, Union

import requests
from requests.auth import AuthBase

from ._tessera import Client, SyncClient

__all__ = ["Auth"]

_RETRIED = "_tessera_retried"


class Auth(AuthBase):
    """Bearer authentication from a tessera ``SyncClient`` (or a ``Client``, used through its sync view)."""

    def __init__(self, client: Union[SyncClient, Client]) -> None:
        if isinstance(client, Client):
            client = client.sync
        if not isinstance(client, SyncClient):
            raise TypeError("tessera.requests.Auth needs a tessera.SyncClient or tessera.Client")
        self._client = client

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._client.authorization_header()
        request.register_hook("response", self._retry_on_401)
        return request

    def _retry_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if response.status_code != 401 or getattr(response.request, _RETRIED, False):
            return response
        header = self._client.force_refresh()
        response.content  # read the body so that the connection can be reused
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = header
        setattr(retry, _RETRIED, True)
        connection = response.connection
        if connection is None:
            return response
        kwargs.pop("hooks", None)
        new_response: requests.Response = connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response

    def __repr__(self) -> str:
        return f"tessera.requests.Auth({self._client!r})"
