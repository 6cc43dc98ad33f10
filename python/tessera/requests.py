"""``requests.auth.AuthBase`` for tessera: adds the ``Authorization`` header; after a 401,
refreshes once (shared with every concurrent caller) and resends the request once. After a 403 (or
401) saying ``insufficient_scope`` with ``scope="…"`` (RFC 6750 §3.1), a step-up: a login for the
wider scope when a person can be asked (or none is needed), then the request once more; else the
typed ``AuthenticationError`` (``code == "insufficient_scope"``). (Bearer providers.)

    session = requests.Session()
    session.auth = tessera.requests.Auth(tessera.SyncClient(...))
    session.get("https://api.example.com/me")

For a DPoP provider (``dpop=True``, docs/dpop.md) every request, and every resend, carries
``Authorization: DPoP <token>`` and a fresh ``DPoP`` proof for its method and URL, with the last
nonce that server gave; a 401 asking for a nonce (``use_dpop_nonce``) is resent once with it.
"""

from __future__ import annotations

from typing import Any, Mapping, MutableMapping, Union

import requests
from requests.auth import AuthBase

from ._errors import _raise_if_still_insufficient
from ._tessera import Client, SyncClient

__all__ = ["Auth"]

_RETRIED = "_tessera_retried"
_NONCE_RETRIED = "_tessera_nonce_retried"
_STEPPED_UP = "_tessera_stepped_up"


class Auth(AuthBase):
    """Bearer authentication from a tessera ``SyncClient`` (or a ``Client``, used through its sync view)."""

    def __init__(self, client: Union[SyncClient, Client]) -> None:
        if isinstance(client, Client):
            client = client.sync
        if not isinstance(client, SyncClient):
            raise TypeError("tessera.requests.Auth needs a tessera.SyncClient or tessera.Client")
        self._client = client

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._client.uses_dpop:
            _authorize(request.headers, self._client.request_headers(request.method or "GET", request.url or ""))
        else:
            request.headers["Authorization"] = self._client.authorization_header()
        request.register_hook("response", self._retry_on_401)
        return request

    def _retry_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        sent = response.request
        nonce_demanded = self._client.observe_dpop_response(
            sent.url or "",
            response.status_code,
            response.headers.get("www-authenticate"),
            response.headers.get("dpop-nonce"),
        )
        if nonce_demanded and not getattr(sent, _NONCE_RETRIED, False):
            # DPoP: the server wants (another) nonce; once more with a proof that carries it.
            retry = sent.copy()
            setattr(retry, _NONCE_RETRIED, True)
            setattr(retry, _RETRIED, getattr(sent, _RETRIED, False))
            _authorize(retry.headers, self._client.request_headers(retry.method or "GET", retry.url or ""))
            resent = self._resend(response, retry, **kwargs)
            # The answer to the resend gets the same treatment (a 401 for the token itself), once.
            return resent if resent is response else self._retry_on_401(resent, **kwargs)
        # A scope the token lacks: a step-up (once), not a refresh.
        if response.status_code in (401, 403) and not self._client.uses_dpop and not getattr(sent, _STEPPED_UP, False):
            www_authenticate = response.headers.get("www-authenticate")
            stepped = self._client.step_up(sent.url or "", response.status_code, www_authenticate)
            if stepped is not None:
                retry = sent.copy()
                retry.headers["Authorization"] = stepped
                setattr(retry, _STEPPED_UP, True)
                setattr(retry, _RETRIED, True)
                resent = self._resend(response, retry, **kwargs)
                _raise_if_still_insufficient(retry.url or "", resent.status_code, resent.headers.get("www-authenticate") or "")
                return resent
        # A nonce challenge is not a rejected token: no refresh (the nonce is remembered).
        if response.status_code != 401 or nonce_demanded or getattr(sent, _RETRIED, False):
            return response
        header = self._client.force_refresh()
        retry = sent.copy()
        if self._client.uses_dpop:
            _authorize(retry.headers, self._client.request_headers(retry.method or "GET", retry.url or ""))
        else:
            retry.headers["Authorization"] = header
        setattr(retry, _RETRIED, True)
        setattr(retry, _NONCE_RETRIED, getattr(sent, _NONCE_RETRIED, False))
        resent = self._resend(response, retry, **kwargs)
        self._client.observe_dpop_response(
            retry.url or "", resent.status_code, resent.headers.get("www-authenticate"), resent.headers.get("dpop-nonce")
        )
        return resent

    def _resend(self, response: requests.Response, retry: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        response.content  # read the body so that the connection can be reused
        response.close()
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


def _authorize(headers: MutableMapping[str, Union[str, bytes]], auth: Mapping[str, str]) -> None:
    """Puts ``auth`` (``Authorization`` and, for a DPoP token, ``DPoP``) on a request, dropping the
    proof of an earlier token: a refreshed token may come back as Bearer (RFC 9449 §5)."""
    headers.pop("DPoP", None)
    headers.update(auth)
