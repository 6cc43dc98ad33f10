"""The exception hierarchy, mirroring the Rust error taxonomy (``tessera_core::Error``).

Messages never contain secrets: only endpoints, OAuth codes, server descriptions and paths.
"""

from __future__ import annotations

# `typing` costs ~8 ms at import (it pulls in `re`); annotations here are strings, so it is
# imported for type checkers only: a short script printing a cached token starts faster.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

__all__ = [
    "TesseraError",
    "AuthenticationError",
    "ReauthenticationRequired",
    "ConfigurationError",
    "TransportError",
    "UnexpectedStatusError",
    "MalformedResponseError",
    "StoreError",
    "InternalError",
]


class TesseraError(Exception):
    """Any error from tessera.

    ``kind`` names the Rust variant (``oauth``, ``unexpected_status``, ``transport``,
    ``outcome_unknown``, ``malformed_response``, ``reauthentication_required``, ``configuration``, ``store``,
    ``internal``);
    ``transient`` is True when retrying the same call later may succeed.
    """

    kind: str
    transient: bool
    code: Optional[str]
    description: Optional[str]
    status: Optional[int]
    endpoint: Optional[str]
    retry_after: Optional[float]
    transport_kind: Optional[str]
    store_kind: Optional[str]
    location: Optional[str]

    def __init__(
        self,
        message: str,
        *,
        kind: str = "other",
        transient: bool = False,
        code: Optional[str] = None,
        description: Optional[str] = None,
        status: Optional[int] = None,
        endpoint: Optional[str] = None,
        retry_after: Optional[float] = None,
        transport_kind: Optional[str] = None,
        store_kind: Optional[str] = None,
        location: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.transient = transient
        self.code = code
        self.description = description
        self.status = status
        self.endpoint = endpoint
        self.retry_after = retry_after
        self.transport_kind = transport_kind
        self.store_kind = store_kind
        self.location = location

    @property
    def message(self) -> str:
        """The message (no secrets)."""
        return str(self.args[0]) if self.args else ""


class AuthenticationError(TesseraError):
    """The authorization server answered with an OAuth error (RFC 6749 §5.2).

    ``code`` is the wire code (``invalid_grant``, ``invalid_client``, ...), ``description`` the
    server's ``error_description``, ``status`` the HTTP status.
    """


class ReauthenticationRequired(TesseraError):
    """No token can be obtained without the user: refresh token rejected or expired, static token expired."""


class ConfigurationError(TesseraError, ValueError):
    """Bad configuration or arguments."""


class TransportError(TesseraError):
    """The request did not complete; ``transport_kind`` is ``connect``, ``timeout``,
    ``connection_closed``, ``body_too_large``, ``redirect``, ``invalid_url``, ``certificate`` (the
    server's TLS certificate is not trusted: not transient, never retried; ``ca_file`` trusts a
    private CA) or ``other``.

    ``kind`` is ``outcome_unknown`` (and ``transient`` False) when a request that spends a refresh
    token was sent and its answer lost: the server may have rotated the token, so presenting it
    again could revoke the grant."""


class UnexpectedStatusError(TesseraError):
    """A non-success HTTP status without an OAuth error body (a proxy page, a bare 500).
    ``status``, and ``retry_after`` in seconds when the server sent one."""


class MalformedResponseError(TesseraError):
    """A success status whose body is not what the protocol requires. ``kind`` is
    ``metadata`` for a metadata document refused by resource discovery (another issuer or
    resource, plain http off loopback, too large, a malformed field), else ``malformed_response``.
    """


class StoreError(TesseraError):
    """A token store could not be read or written; ``store_kind`` (``insecure_permissions``,
    ``corrupt``, ``io``, ``lock_timeout``, ``unavailable``, ...) and ``location``.

    An exception raised by your own store's methods is not wrapped: it propagates as is.
    """


class InternalError(TesseraError):
    """A state that should not happen: a bug in tessera (or in a flow you brought), never a
    configuration you can fix. Please report it with the message."""


def _raise_if_still_insufficient(url: str, status: int, www_authenticate: str) -> None:
    """After one step-up (the adapters), an answer that still says ``insufficient_scope``: the typed
    error, never a second login."""
    if status in (401, 403) and "insufficient_scope" in www_authenticate:
        raise AuthenticationError(
            "the API still finds a scope missing after a step-up login",
            kind="oauth",
            code="insufficient_scope",
            status=status,
            endpoint=url.split("?")[0],
        )
