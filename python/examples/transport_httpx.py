"""Your own HTTP stack sends tessera's requests (transport=): an httpx.Client whose event hook sees
every token request, an httpx.AsyncClient on your event loop, and a plain callable. Its proxy, CA
bundle, client certificate and connection pool apply; single flight, stores and policies stay
tessera's.

Environment: TESSERA_ISSUER, CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD.
"""

import asyncio
import os
import urllib.error
import urllib.request
from typing import List

import httpx

import tessera

issuer = os.environ["TESSERA_ISSUER"]
login = dict(
    client_id=os.environ["CLIENT_ID"],
    client_secret=os.environ["CLIENT_SECRET"],
    grant=tessera.Password(os.environ["USERNAME"], os.environ["PASSWORD"]),
)
sent: List[str] = []


def log(request: httpx.Request) -> None:
    sent.append(f"{request.method} {request.url.path}")  # never the body: it holds the password


# 1. Sync: the client you already configured (proxy=..., verify="corp-ca.pem", cert=..., hooks).
with httpx.Client(timeout=10, event_hooks={"request": [log]}) as http:
    with tessera.SyncClient(issuer, transport=http, **login) as client:
        client.authorization_header()  # discovery, then the password grant
        client.authorization_header()  # cached: nothing sent
        client.force_refresh()  # after an API answered 401: the refresh grant
print("sync sent:", sent)


# 2. Async: an httpx.AsyncClient, awaited on your loop. 100 callers at once, no token yet: one request.
async def main() -> None:
    async def alog(request: httpx.Request) -> None:
        log(request)

    async with httpx.AsyncClient(timeout=10, event_hooks={"request": [alog]}) as http:
        async with tessera.Client(issuer, transport=http, **login) as client:
            sent.clear()
            headers = await asyncio.gather(*(client.authorization_header() for _ in range(100)))
            print("async: 100 callers, headers:", len(set(headers)), "token requests:", sent.count("POST /token"))


asyncio.run(main())


# 3. Any callable (HttpRequest) -> HttpResponse, sync or async: here the standard library. Raise
#    tessera.TransportError(..., transport_kind="connect") only when nothing can have been sent.
def send(request: tessera.HttpRequest) -> tessera.HttpResponse:
    outgoing = urllib.request.Request(request.url, data=request.body, method=request.method, headers=request.headers)
    try:
        with urllib.request.urlopen(outgoing, timeout=request.timeout) as answer:
            return tessera.HttpResponse(answer.status, dict(answer.headers), answer.read())
    except urllib.error.HTTPError as refused:  # a 4xx/5xx is an answer, not a failure
        return tessera.HttpResponse(refused.code, dict(refused.headers), refused.read())


with tessera.SyncClient(issuer, transport=send, **login) as client:
    print("callable: header starts with:", client.authorization_header()[:7])
