"""tessera: obtains, caches, refreshes, persists and revokes credentials for API clients.

The token machinery is Rust (the ``tessera`` crate); this package is its Python face::

    import tessera

    async with tessera.Client(
        "https://idp.example.com",
        client_id="my-client",
        client_secret=os.environ["CLIENT_SECRET"],
        grant=tessera.Password("alice", os.environ["PASSWORD"], totp_secret=os.environ["TOTP_SECRET"]),
        store=tessera.FileStore("~/.cache/my-app"),
    ) as client:
        headers = {"Authorization": await client.authorization_header()}

``tessera.SyncClient`` has the same shape without ``await``. See docs/python.md.
"""

from ._errors import (
    AuthenticationError,
    ConfigurationError,
    MalformedResponseError,
    ReauthenticationRequired,
    StoreError,
    TesseraError,
    TransportError,
    UnexpectedStatusError,
)
from ._tessera import (
    Client,
    ClientAuth,
    ClientCredentials,
    Endpoints,
    FileStore,
    Grant,
    LogoutResult,
    MemoryStore,
    Password,
    ProviderConfig,
    RefreshToken,
    StaticToken,
    SyncClient,
    TokenSet,
    __version__,
    current_time_ms,
    is_expired,
    is_near_expiry,
)
from ._types import AsyncTokenStore, LoadedTokens, TokenStore

__all__ = [
    "AsyncTokenStore",
    "AuthenticationError",
    "Client",
    "ClientAuth",
    "ClientCredentials",
    "ConfigurationError",
    "Endpoints",
    "FileStore",
    "Grant",
    "LoadedTokens",
    "LogoutResult",
    "MalformedResponseError",
    "MemoryStore",
    "Password",
    "ProviderConfig",
    "ReauthenticationRequired",
    "RefreshToken",
    "StaticToken",
    "StoreError",
    "SyncClient",
    "TesseraError",
    "TokenSet",
    "TokenStore",
    "TransportError",
    "UnexpectedStatusError",
    "__version__",
    "current_time_ms",
    "is_expired",
    "is_near_expiry",
]
