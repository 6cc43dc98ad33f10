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
    InternalError,
    MalformedResponseError,
    ReauthenticationRequired,
    StoreError,
    TesseraError,
    TransportError,
    UnexpectedStatusError,
)
from ._tessera import (
    AdminApiKeys,
    ApiKey,
    ApiKeyGrant,
    ApiKeys,
    AuthClient,
    BasicCredential,
    Browser,
    BrowserPrompt,
    ChainConfig,
    Client,
    ClientAuth,
    ClientCredentials,
    CodePrompt,
    Cognito,
    DeviceCode,
    DeviceCodePrompt,
    DomainAccess,
    DomainClient,
    DomainServer,
    EmailOtp,
    Endpoints,
    FileStore,
    Grant,
    JwtBearer,
    LogoutResult,
    MemoryStore,
    OAuthCredential,
    Password,
    ProviderConfig,
    ProviderInfo,
    ProviderSettings,
    RedisStore,
    RefreshContext,
    RefreshFailureAction,
    RefreshToken,
    Registry,
    Stage,
    StaticToken,
    SyncAdminApiKeys,
    SyncApiKeys,
    SyncAuthClient,
    SyncClient,
    SyncDomainClient,
    TokenSet,
    WorkloadIdentity,
    __version__,
    current_time_ms,
    is_expired,
    is_near_expiry,
    open_store,
)

# The protocols (typing only) are imported on first use: `typing` costs ~8 ms at start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._types import (
        AsyncTokenStore,
        BrowserPrompter,
        LoadedTokens,
        OtpCallback,
        Prompter,
        Provider,
        RefreshHooks,
        RefreshPolicy,
        TokenStore,
    )
    from ._transport import HttpRequest, HttpResponse, Transport

_PROTOCOLS = frozenset(
    {"AsyncTokenStore", "BrowserPrompter", "LoadedTokens", "OtpCallback", "Prompter", "Provider", "RefreshHooks", "RefreshPolicy", "TokenStore"}
)


# `transport=` (docs/python-transport.md): its request and response types, loaded on first use.
_TRANSPORT = frozenset({"HttpRequest", "HttpResponse", "Transport"})


def __getattr__(name: str) -> object:
    if name in _PROTOCOLS:
        from . import _types

        return getattr(_types, name)
    if name in _TRANSPORT:
        from . import _transport

        return getattr(_transport, name)
    raise AttributeError(f"module 'tessera' has no attribute {name!r}")

__all__ = [
    "AdminApiKeys",
    "ApiKey",
    "ApiKeyGrant",
    "ApiKeys",
    "AsyncTokenStore",
    "BrowserPrompter",
    "AuthClient",
    "AuthenticationError",
    "BasicCredential",
    "Browser",
    "BrowserPrompt",
    "ChainConfig",
    "Client",
    "ClientAuth",
    "ClientCredentials",
    "CodePrompt",
    "Cognito",
    "ConfigurationError",
    "DeviceCode",
    "DeviceCodePrompt",
    "DomainAccess",
    "DomainClient",
    "DomainServer",
    "EmailOtp",
    "Endpoints",
    "FileStore",
    "Grant",
    "HttpRequest",
    "HttpResponse",
    "JwtBearer",
    "LoadedTokens",
    "LogoutResult",
    "MalformedResponseError",
    "MemoryStore",
    "OtpCallback",
    "OAuthCredential",
    "Password",
    "Prompter",
    "Provider",
    "ProviderConfig",
    "ProviderInfo",
    "ProviderSettings",
    "ReauthenticationRequired",
    "RedisStore",
    "RefreshContext",
    "RefreshFailureAction",
    "RefreshHooks",
    "RefreshPolicy",
    "RefreshToken",
    "Registry",
    "Stage",
    "StaticToken",
    "StoreError",
    "InternalError",
    "SyncAdminApiKeys",
    "SyncApiKeys",
    "SyncAuthClient",
    "SyncClient",
    "SyncDomainClient",
    "TesseraError",
    "TokenSet",
    "TokenStore",
    "Transport",
    "TransportError",
    "UnexpectedStatusError",
    "WorkloadIdentity",
    "__version__",
    "current_time_ms",
    "is_expired",
    "is_near_expiry",
    "open_store",
]
