"""Your own HTTP stack for the token requests of a ``Client`` / ``SyncClient`` (``transport=``).

tessera's Rust engine plans every request (discovery, token, device authorization, revocation)
and keeps single flight, stores, retries and the refresh-token rules; ``transport=`` only changes
who sends. It takes:

- an ``httpx.Client``: its proxy, CA bundle, client certificate, event hooks, timeouts and
  connection pool apply (redirects are never followed: a 3xx is returned as it is);
- an ``httpx.AsyncClient`` (with the async ``Client`` only: it is awaited on the caller's loop);
- any callable, sync or ``async def``, taking an ``HttpRequest`` and returning an
  ``HttpResponse`` (or any object with ``status_code``, ``headers`` and ``content``, such as an
  ``httpx.Response`` or a ``requests.Response``).

Errors: httpx's exceptions are mapped by phase (a ``ConnectError`` caused by an untrusted certificate
is ``certificate``, never retried). ``ConnectError``, ``ConnectTimeout`` and
``PoolTimeout`` (nothing reached the server) are ``connect``: a refresh is retried with the same
refresh token. Anything that can happen after the request was sent (``ReadTimeout``,
``WriteTimeout``: ``timeout``; ``ReadError``, ``WriteError``, ``RemoteProtocolError``, any other
``httpx.TransportError``: ``connection_closed``) means the outcome is unknown: the engine never
presents that refresh token again. A callable of your own signals a kind by raising
``tessera.TransportError(message, transport_kind="connect" | "timeout" | "connection_closed" | ...)``
(say ``connect`` only when nothing can have been sent); any other exception it raises counts as
``connection_closed``. This module is imported only when ``transport=`` is given.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Tuple, Union

from ._errors import ConfigurationError, TransportError

__all__ = ["HttpRequest", "HttpResponse", "Transport"]


@dataclass(frozen=True)
class HttpRequest:
    """One request of tessera's engine, for a ``transport=`` callable to send once.

    Attributes:
        method: ``"GET"`` or ``"POST"``.
        url: the full URL (``https``, or ``http`` to loopback).
        headers: header names and values to send (``content-type``, ``accept``,
            ``authorization`` when the client authenticates with HTTP Basic).
        body: the body (a form or JSON; it may hold a password, a client secret or a refresh
            token: never log it), or ``None`` for none.
        timeout: seconds the whole request may take: the client's ``timeout=`` (default 30).
    """

    method: str
    url: str
    headers: Dict[str, str]
    body: Optional[bytes]
    timeout: float

    def __repr__(self) -> str:  # no header values, no body: they may be secrets
        return f"HttpRequest(method={self.method!r}, url={self.url.split('?')[0]!r})"


@dataclass(frozen=True)
class HttpResponse:
    """The answer a ``transport=`` callable returns: any status (a 400 or a 503 is an answer, not
    an error).

    Attributes:
        status: the HTTP status.
        headers: header names and values (at least ``content-type``, ``retry-after``,
            ``www-authenticate`` and ``dpop-nonce`` when the server sent them); default none.
        body: the whole body; default empty.
    """

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status})"


#: What ``transport=`` takes: an ``httpx.Client``, an ``httpx.AsyncClient``, or a callable
#: ``(HttpRequest) -> HttpResponse`` (sync or ``async def``).
Transport = Union[Any, Callable[[HttpRequest], Union[HttpResponse, Awaitable[HttpResponse]]]]

# What the Rust side gets back from a sender: (status, [(name, value), ...], body).
_Answer = Tuple[int, List[Tuple[str, str]], bytes]


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:  # pragma: no cover - httpx is optional
        return None
    return httpx


def _kind(error: BaseException) -> Optional[str]:
    """The transport kind of an httpx exception, by the phase it happened in; None for others."""
    httpx = _httpx()
    if httpx is None or not isinstance(error, httpx.HTTPError):
        return None
    # The server's certificate is not trusted: final (a retry meets the same certificate).
    if isinstance(error, httpx.ConnectError) and _untrusted_certificate(error):
        return "certificate"
    # Nothing was sent: the connection (or a pooled one) was never had.
    if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return "connect"
    if isinstance(error, httpx.UnsupportedProtocol):
        return "invalid_url"
    if isinstance(error, httpx.TooManyRedirects):
        return "redirect"
    # Sent, or possibly sent: ReadTimeout, WriteTimeout.
    if isinstance(error, httpx.TimeoutException):
        return "timeout"
    # ReadError, WriteError, RemoteProtocolError, ProxyError, ...: when unsure, the outcome is unknown.
    return "connection_closed"


def _untrusted_certificate(error: BaseException) -> bool:
    """True when ``ssl`` refused the server's certificate somewhere in ``error``'s causes (httpx
    wraps httpcore's error, which wraps the ``ssl.SSLCertVerificationError``)."""
    import ssl

    seen = 0
    cause: Optional[BaseException] = error
    while cause is not None and seen < 16:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def _reraise(error: BaseException) -> None:
    """Raises ``error`` as a ``tessera.TransportError`` when it is an httpx one (its message only:
    httpx messages name no header or body)."""
    kind = _kind(error)
    if kind is not None:
        raise TransportError(str(error) or type(error).__name__, kind="transport", transport_kind=kind) from error


def _read_capped(chunks: Any, limit: int) -> bytes:
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:  # tessera refuses it anyway: stop reading
            break
    return bytes(body)


def _answer(response: Any) -> _Answer:
    """A callable's answer: an ``HttpResponse``, or anything shaped like an httpx/requests response."""
    if isinstance(response, HttpResponse):
        status, headers, body = response.status, response.headers, response.body
    elif hasattr(response, "status_code") and hasattr(response, "content"):
        status, headers, body = response.status_code, response.headers, response.content
    else:
        raise TypeError(
            f"a transport must return a tessera.HttpResponse (or an httpx/requests response), not {type(response).__name__}"
        )
    items = headers.multi_items() if hasattr(headers, "multi_items") else (headers or {}).items()
    return int(status), [(str(name), str(value)) for name, value in items], bytes(body or b"")


def adapt(transport: Any, *, timeout: float, max_bytes: int, async_allowed: bool) -> Callable[..., Any]:
    """The sender the Rust engine calls: ``send(method, url, headers, body) -> (status, headers, body)``,
    sync or ``async def`` like what it wraps; errors as ``tessera.TransportError``."""
    httpx = _httpx()
    if httpx is not None and isinstance(transport, httpx.Client):
        client = transport

        def send_sync(method: str, url: str, headers: List[Tuple[str, str]], body: Optional[bytes]) -> _Answer:
            try:
                with client.stream(method, url, headers=headers, content=body, follow_redirects=False) as response:
                    content = _read_capped(response.iter_bytes(), max_bytes)
                    return response.status_code, list(response.headers.multi_items()), content
            except Exception as error:
                _reraise(error)
                raise

        return send_sync
    if httpx is not None and isinstance(transport, httpx.AsyncClient):
        if not async_allowed:
            raise ConfigurationError(
                "transport: an httpx.AsyncClient needs the async tessera.Client (give SyncClient an httpx.Client)",
                kind="configuration",
            )
        aclient = transport

        async def send_async(method: str, url: str, headers: List[Tuple[str, str]], body: Optional[bytes]) -> _Answer:
            try:
                async with aclient.stream(method, url, headers=headers, content=body, follow_redirects=False) as response:
                    content = bytearray()
                    async for chunk in response.aiter_bytes():
                        content += chunk
                        if len(content) > max_bytes:
                            break
                    return response.status_code, list(response.headers.multi_items()), bytes(content)
            except Exception as error:
                _reraise(error)
                raise

        return send_async
    if not callable(transport):
        raise TypeError("transport must be an httpx.Client, an httpx.AsyncClient or a callable (HttpRequest) -> HttpResponse")
    function = transport
    call = getattr(function, "__call__", None)
    is_async = inspect.iscoroutinefunction(function) or (
        not inspect.isroutine(function) and inspect.iscoroutinefunction(call)
    )

    def request_of(method: str, url: str, headers: List[Tuple[str, str]], body: Optional[bytes]) -> HttpRequest:
        return HttpRequest(method, url, dict(headers), body, timeout)

    if is_async:

        async def call_async(method: str, url: str, headers: List[Tuple[str, str]], body: Optional[bytes]) -> _Answer:
            try:
                return _answer(await function(request_of(method, url, headers, body)))
            except Exception as error:
                _reraise(error)
                raise

        return call_async

    def call_sync(method: str, url: str, headers: List[Tuple[str, str]], body: Optional[bytes]) -> _Answer:
        try:
            return _answer(function(request_of(method, url, headers, body)))
        except Exception as error:
            _reraise(error)
            raise

    return call_sync
