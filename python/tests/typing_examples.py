"""Type-checked by test_stubs.py (never run): how user code reads against the stubs."""

from __future__ import annotations

from datetime import timedelta
from typing import Optional

import httpx
import requests

import tessera
import tessera.httpx
import tessera.requests
from tessera.native import NativeEngine


class MyStore:
    async def load(self, key: str) -> Optional[tessera.TokenSet]:
        return None

    async def save(self, key: str, tokens: tessera.TokenSet) -> None:
        pass


async def use_async() -> str:
    async with tessera.Client(
        "https://idp.example.com",
        client_id="my-client",
        client_secret="secret",
        grant=tessera.Password("alice", "pw", totp_secret="JBSWY3DP"),
        scope=["openid", "api:read"],
        store=MyStore(),
        refresh_skew=timedelta(seconds=60),
    ) as client:
        header: str = await client.authorization_header()
        tokens: tessera.TokenSet = await client.tokens()
        valid: bool = tokens.access_valid(30) and tokens.refresh_valid(timedelta(minutes=1))
        result: tessera.LogoutResult = await client.logout()
        async with httpx.AsyncClient(auth=tessera.httpx.Auth(client)) as http:
            await http.get("https://api.example.com")
        return header if valid and result.revoked else ""


def use_sync() -> Optional[str]:
    with tessera.SyncClient(token_url="https://idp/token", client_id="c", client_secret="s", store=tessera.FileStore("/tmp/x")) as client:
        session = requests.Session()
        session.auth = tessera.requests.Auth(client)
        try:
            return client.authorization_header()
        except tessera.AuthenticationError as error:
            code: Optional[str] = error.code
            return code
        finally:
            engine = NativeEngine()
            engine.ensure("k")
