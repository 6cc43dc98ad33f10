# Type stubs of the native module (crates/tessera-py). python/tests/test_stubs.py runs
# mypy.stubtest to check that they match the runtime.
from datetime import datetime, timedelta
from os import PathLike
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
    final,
)

from typing_extensions import disjoint_base

from ._types import (
    AsyncTokenStore,
    BrowserPrompter,
    OtpCallback,
    Prompter,
    Provider,
    RefreshHooks,
    RefreshPolicy,
    TokenStore,
)
from ._transport import Transport

__version__: str
__all__ = [
    "AdminApiKeys",
    "ApiKey",
    "ApiKeyGrant",
    "ApiKeys",
    "AuthClient",
    "BasicCredential",
    "Browser",
    "BrowserPrompt",
    "ChainConfig",
    "Client",
    "ClientAuth",
    "ClientCredentials",
    "CodePrompt",
    "Cognito",
    "DeviceCode",
    "DeviceCodePrompt",
    "DomainAccess",
    "DomainClient",
    "DomainServer",
    "EmailOtp",
    "Endpoints",
    "FileStore",
    "Grant",
    "JsonEngine",
    "JwtBearer",
    "LogoutResult",
    "MemoryStore",
    "OAuthCredential",
    "OpaqueStore",
    "Password",
    "ProviderConfig",
    "ProviderInfo",
    "ProviderSettings",
    "Ready",
    "RedisStore",
    "RefreshContext",
    "RefreshFailureAction",
    "RefreshToken",
    "Registry",
    "Stage",
    "StaticToken",
    "SyncAdminApiKeys",
    "SyncApiKeys",
    "SyncAuthClient",
    "SyncClient",
    "SyncDomainClient",
    "TokenSet",
    "WorkloadIdentity",
    "__version__",
    "current_time_ms",
    "is_expired",
    "is_near_expiry",
    "open_store",
]

_Seconds = Union[float, timedelta]
_Instant = Union[float, datetime]
_Store = Union[MemoryStore, FileStore, RedisStore, OpaqueStore, TokenStore, AsyncTokenStore]
_Policy = Union[RefreshFailureAction, RefreshPolicy]
_Status = Literal["authenticated", "expired", "available", "error"]
_Json = Union[None, bool, int, float, str, List["_Json"], Dict[str, "_Json"]]
_ClientAuthMethod = Literal[
    "basic",
    "post",
    "none",
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
]
_AnyPrompter = Union[Prompter, BrowserPrompter]
_KeyStatus = Literal["ACTIVE", "EXPIRED", "REVOKED"]
_KeyStatusFilter = Literal["ACTIVE", "EXPIRED", "REVOKED", "active", "expired", "revoked"]

@final
class TokenSet:
    def __new__(
        cls,
        access_token: str,
        *,
        token_type: str = "Bearer",
        expires_at: Optional[_Instant] = None,
        expires_in: Optional[_Seconds] = None,
        refresh_token: Optional[str] = None,
        refresh_expires_at: Optional[_Instant] = None,
        id_token: Optional[str] = None,
        scope: Optional[str] = None,
        issued_at: Optional[_Instant] = None,
    ) -> TokenSet: ...
    @property
    def access_token(self) -> str: ...
    @property
    def token_type(self) -> str: ...
    @property
    def expires_at(self) -> Optional[datetime]: ...
    @property
    def expires_at_ms(self) -> Optional[int]: ...
    @property
    def refresh_token(self) -> Optional[str]: ...
    @property
    def refresh_expires_at(self) -> Optional[datetime]: ...
    @property
    def id_token(self) -> Optional[str]: ...
    @property
    def scope(self) -> Optional[str]: ...
    @property
    def issued_at(self) -> datetime: ...
    @property
    def issued_at_ms(self) -> int: ...
    def access_valid(self, skew: _Seconds = ...) -> bool: ...
    def refresh_valid(self, skew: _Seconds = ...) -> bool: ...
    def is_expired(self) -> bool: ...
    def is_near_expiry(self, threshold: _Seconds) -> bool: ...
    def to_json(self) -> str: ...
    @staticmethod
    def from_json(data: str) -> TokenSet: ...
    def __eq__(self, other: object, /) -> bool: ...

@disjoint_base
class Grant:
    @property
    def name(self) -> str: ...
    @property
    def unattended(self) -> bool: ...

@final
class Password(Grant):
    def __new__(
        cls, username: str, password: str, *, totp: Optional[str] = None, totp_secret: Optional[str] = None
    ) -> Password: ...
    @property
    def username(self) -> str: ...

@final
class ClientCredentials(Grant):
    def __new__(cls) -> ClientCredentials: ...

@final
class WorkloadIdentity(Grant):
    """Workload identity federation: the workload's platform token, read at every login, traded for
    an access token (RFC 8693 token exchange, or the client assertion of client credentials).

    Args:
        subject_token: where the token is read: ``"file:PATH"``, ``"env:NAME"``, ``"url:URL"``,
            ``"exec:COMMAND"`` (run by ``sh -c``; its stdout) or ``"github-actions"``. Default
            ``None``; required unless ``external_account``.
        external_account: a Google ``external_account`` credential file: the JSON, or a reference
            (``"file:PATH"``, ``"env:NAME"``) read now. Its ``credential_source`` is the subject
            token, its ``audience`` and ``subject_token_type`` are used, its ``token_url`` is the
            token endpoint and its ``client_id`` / ``client_secret`` the client, for a client that
            gives none. Instead of the other arguments. Default ``None``.
        subject_token_type: the RFC 8693 ``subject_token_type``; default
            ``"urn:ietf:params:oauth:token-type:jwt"``.
        subject_token_headers: ``url:`` only: request headers (a value ``"env:NAME"`` is read from
            the environment); default ``None``.
        subject_token_field: ``url:`` only: the JSON field holding the token; default ``None``: the
            whole body.
        subject_token_timeout: ``exec:`` only: seconds (or a ``timedelta``); default ``30``.
        subject_token_audience: ``github-actions`` only: the ``aud`` asked of GitHub; default
            ``None``: ``audience``.
        exchange: ``"token_exchange"`` (the default) or ``"client_assertion"``.
        audience: the exchange's ``audience``; default ``None``.
        resource: the exchange's ``resource``; default ``None``.
        requested_token_type: the exchange's ``requested_token_type``; default ``None``.
    """

    def __new__(
        cls,
        subject_token: Optional[str] = None,
        *,
        external_account: Optional[str] = None,
        subject_token_type: str = "urn:ietf:params:oauth:token-type:jwt",
        subject_token_headers: Optional[Mapping[str, str]] = None,
        subject_token_field: Optional[str] = None,
        subject_token_timeout: _Seconds = 30,
        subject_token_audience: Optional[str] = None,
        exchange: Literal["token_exchange", "client_assertion"] = "token_exchange",
        audience: Optional[str] = None,
        resource: Optional[str] = None,
        requested_token_type: Optional[str] = None,
    ) -> WorkloadIdentity: ...

@final
class JwtBearer(Grant):
    """The JWT bearer grant (RFC 7523 §2.1): a service account signs a short JWT as the grant.

    Args:
        assertion_key: the private key's text (not a path): a PKCS#8 PEM of an RSA (>= 2048 bits),
            EC P-256 or Ed25519 key, an RSA PKCS#1 or EC P-256 SEC1 PEM, or a JWK with ``d``.
            Required unless ``service_account_key``; the client's ``client_id`` is the assertion's
            ``iss``.
        service_account_key: a Google service-account JSON key: the JSON itself, or
            ``"file:PATH"`` / ``"env:NAME"`` / ``"keyring:service/account"`` (read here). Its
            ``client_email`` is the client id (give no ``client_id``), ``private_key`` the key,
            ``private_key_id`` the ``kid``, ``token_uri`` the token endpoint unless the client
            gives ``issuer`` or ``token_endpoint``. Default ``None``.
        assertion_alg: default ``None``: from the key (``RS256``, ``ES256``, ``EdDSA``).
        assertion_kid: default ``None``: the JWK's ``kid`` (the key file's ``private_key_id``),
            else no ``kid``.
        subject: the assertion's ``sub``; default ``None``: the client id.
        audience: the assertion's ``aud``; default ``None``: the token endpoint.
        assertion_lifetime: seconds (or a ``timedelta``) from ``iat`` to ``exp``; default 3600.
        scope_in_assertion: the scope as a claim instead of a form field; default ``None``:
            ``True`` with ``service_account_key``, else ``False``.
    """

    def __new__(
        cls,
        assertion_key: Optional[str] = None,
        *,
        service_account_key: Optional[str] = None,
        assertion_alg: Optional[str] = None,
        assertion_kid: Optional[str] = None,
        subject: Optional[str] = None,
        audience: Optional[str] = None,
        assertion_lifetime: _Seconds = 3600,
        scope_in_assertion: Optional[bool] = None,
    ) -> JwtBearer: ...
    @property
    def client_id(self) -> Optional[str]: ...
    @property
    def token_endpoint(self) -> Optional[str]: ...

@final
class RefreshToken(Grant):
    def __new__(cls, refresh_token: str) -> RefreshToken: ...

@final
class StaticToken(Grant):
    def __new__(cls, access_token: str, *, expires_at: Optional[_Instant] = None) -> StaticToken: ...

@final
class DeviceCode(Grant):
    def __new__(
        cls, device_authorization_endpoint: Optional[str] = None, *, device_authorization_url: Optional[str] = None
    ) -> DeviceCode: ...
    @property
    def device_authorization_endpoint(self) -> Optional[str]: ...
    @property
    def device_authorization_url(self) -> Optional[str]: ...

@final
class Browser(Grant):
    def __new__(
        cls,
        authorization_endpoint: Optional[str] = None,
        redirect_uri: Optional[str] = None,
        authorization_params: Union[Mapping[str, str], Sequence[Tuple[str, str]], None] = None,
        *,
        redirect_port: int = 0,
        redirect_path: str = "/callback",
        login_timeout: _Seconds = ...,
        authorization_url: Optional[str] = None,
        extra_params: Union[Mapping[str, str], Sequence[Tuple[str, str]], None] = None,
        port: Optional[int] = None,
        callback_path: Optional[str] = None,
        timeout: Optional[_Seconds] = None,
    ) -> Browser: ...
    @property
    def authorization_endpoint(self) -> Optional[str]: ...
    @property
    def authorization_url(self) -> Optional[str]: ...
    @property
    def redirect_uri(self) -> Optional[str]: ...

@final
class EmailOtp(Grant):
    def __new__(
        cls,
        email: str,
        otp_start_endpoint: Optional[str] = None,
        otp_verify_endpoint: Optional[str] = None,
        max_code_attempts: int = 3,
        *,
        start_url: Optional[str] = None,
        verify_url: Optional[str] = None,
        max_attempts: Optional[int] = None,
    ) -> EmailOtp: ...
    @property
    def email(self) -> str: ...

@final
class Cognito(Grant):
    def __new__(
        cls,
        endpoint_url: Optional[str] = None,
        username: Optional[str] = None,
        password: Optional[str] = None,
        *,
        auth_flow: Literal["user_password", "custom", "USER_PASSWORD_AUTH", "CUSTOM_AUTH"] = "user_password",
        totp_secret: Optional[str] = None,
        max_code_attempts: int = 3,
        endpoint: Optional[str] = None,
        max_attempts: Optional[int] = None,
    ) -> Cognito: ...
    @property
    def username(self) -> str: ...
    @property
    def auth_flow(self) -> Literal["user_password", "custom"]: ...

@final
class ApiKeyGrant(Grant):
    def __new__(cls, key: Optional[str] = None, *, env: str = "TESSERA_API_KEY", prefix: str = "qk_") -> ApiKeyGrant: ...

@final
class BrowserPrompt:
    @property
    def key(self) -> str: ...
    @property
    def authorization_url(self) -> str: ...
    @property
    def redirect_uri(self) -> str: ...
    @property
    def expects_answer(self) -> bool: ...

@final
class CodePrompt:
    @property
    def key(self) -> str: ...
    @property
    def channel(self) -> Literal["email", "sms", "authenticator", "custom"]: ...
    @property
    def destination(self) -> Optional[str]: ...
    @property
    def attempt(self) -> int: ...
    @property
    def previous_error(self) -> Optional[str]: ...

@final
class DeviceCodePrompt:
    @property
    def key(self) -> str: ...
    @property
    def user_code(self) -> str: ...
    @property
    def verification_uri(self) -> str: ...
    @property
    def verification_uri_complete(self) -> Optional[str]: ...
    @property
    def expires_at(self) -> datetime: ...

@final
class RefreshContext:
    @property
    def key(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class RefreshFailureAction:
    RAISE: RefreshFailureAction
    REAUTHENTICATE: RefreshFailureAction
    @staticmethod
    def retry_after(seconds: _Seconds) -> RefreshFailureAction: ...
    @property
    def kind(self) -> Literal["raise", "reauthenticate", "retry_after"]: ...
    @property
    def delay(self) -> Optional[float]: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ClientAuth:
    def __new__(
        cls,
        client_id: str,
        client_secret: Optional[str] = None,
        *,
        method: Optional[_ClientAuthMethod] = None,
        client_assertion_key: Optional[str] = None,
        client_assertion_alg: Optional[str] = None,
        client_assertion_kid: Optional[str] = None,
        client_assertion_certificate: Optional[str] = None,
        dpop: bool = False,
        dpop_key: Optional[str] = None,
        dpop_alg: Optional[str] = None,
    ) -> ClientAuth:
        """The client's identity at the authorization server.

        Args:
            client_id: the OAuth client.
            client_secret: its secret; default ``None``.
            method: ``"client_secret_basic"`` (the default with a secret; unset, a discovered server
                that does not list it gets ``"client_secret_post"`` or ``"client_secret_jwt"`` if it
                lists them), ``"client_secret_post"``,
                ``"client_secret_jwt"``, ``"private_key_jwt"`` (the default with
                ``client_assertion_key``) or ``"none"`` (the default without either); default ``None``.
            client_assertion_key: ``private_key_jwt``'s private key, as text (PEM or JWK with ``d``);
                default ``None``.
            client_assertion_alg: default ``None``: from the key (``RS256``, ``ES256``, ``EdDSA``).
            client_assertion_kid: default ``None``: the JWK's ``kid``, else no ``kid``.
            client_assertion_certificate: the key's PEM certificate as text (its chain may follow):
                assertions then carry ``x5t``, ``x5t#S256`` and ``x5c``; default ``None``.
            dpop: DPoP (RFC 9449): tokens bound to a key, a proof on every request; default ``False``.
            dpop_key: the DPoP private key, as text (PEM or JWK with ``d``); default ``None``: a key
                generated per provider and kept in the store with the tokens.
            dpop_alg: default ``None``: ``ES256`` (generated) or from ``dpop_key``.
        """
    @staticmethod
    def basic(client_id: str, client_secret: str) -> ClientAuth: ...
    @staticmethod
    def post(client_id: str, client_secret: str) -> ClientAuth: ...
    @staticmethod
    def public(client_id: str) -> ClientAuth: ...
    @property
    def client_id(self) -> str: ...
    @property
    def method(self) -> str: ...

@final
class Endpoints:
    @staticmethod
    def discover(issuer: str) -> Endpoints: ...
    @staticmethod
    def explicit(
        token_endpoint: Optional[str] = None,
        revocation_endpoint: Optional[str] = None,
        *,
        token_url: Optional[str] = None,
        revocation_url: Optional[str] = None,
    ) -> Endpoints: ...

@final
class ProviderConfig:
    def __new__(
        cls,
        client: ClientAuth,
        endpoints: Endpoints,
        grant: Grant,
        *,
        scope: Union[str, Sequence[str], None] = None,
        ca_file: Union[str, PathLike[str], None] = None,
        ca_file_only: bool = False,
        tls_client_certificate: Union[str, PathLike[str], None] = None,
        tls_client_key: Union[str, PathLike[str], None] = None,
        proxy: Optional[str] = None,
        no_proxy: Optional[str] = None,
        timeout: Optional[_Seconds] = None,
        allow_insecure_http: bool = False,
        user_agent: Optional[str] = None,
    ) -> ProviderConfig: ...

@final
class MemoryStore:
    def __new__(cls) -> MemoryStore: ...
    def load(self, key: str) -> Optional[TokenSet]: ...
    def save(self, key: str, tokens: TokenSet) -> MemoryStore: ...
    def clear(self, key: str) -> None: ...

@final
class FileStore:
    def __new__(cls, path: Union[str, PathLike[str]]) -> FileStore:
        """Tokens in ``tokens.json`` in the directory ``path``.

        Args:
            path: the directory (``str`` or ``os.PathLike``); a leading ``~`` is the home
                directory, as ``os.path.expanduser`` reads it (``"~/.cache/my-app"``). Created
                with mode 0700 on first write; nothing is touched until then.
        """
    @property
    def path(self) -> Any: ...
    def load(self, key: str) -> Optional[TokenSet]: ...
    def save(self, key: str, tokens: TokenSet) -> FileStore: ...
    def clear(self, key: str) -> None: ...

@final
class RedisStore:
    def __new__(
        cls,
        url: str,
        *,
        prefix: str = "tessera:",
        lease: _Seconds = ...,
        command_timeout: _Seconds = ...,
        min_ttl: _Seconds = ...,
        ca_certificate: Union[bytes, str, PathLike[str], None] = None,
    ) -> RedisStore: ...
    @property
    def prefix(self) -> str: ...
    def tokens_key(self, key: str) -> str: ...
    def lock_key(self, key: str) -> str: ...
    def load(self, key: str) -> Optional[TokenSet]: ...
    def save(self, key: str, tokens: TokenSet) -> None: ...
    def clear(self, key: str) -> None: ...

@final
class OpaqueStore: ...

def open_store(
    config: Mapping[str, object], *, default_dir: Union[str, PathLike[str], None] = None
) -> Union[MemoryStore, FileStore, RedisStore, OpaqueStore]: ...

@final
class LogoutResult:
    @property
    def revoked(self) -> bool: ...
    @property
    def had_tokens(self) -> bool: ...
    @property
    def revocation_error(self) -> Optional[BaseException]: ...

@final
class Ready:
    def __await__(self) -> Generator[Any, None, Any]: ...
    def __iter__(self) -> Ready: ...
    def __next__(self) -> Any: ...
    def send(self, _value: Any) -> Any: ...
    def throw(self, *_args: Any) -> Any: ...
    def close(self) -> None: ...

@final
class Client:
    def __new__(
        cls,
        issuer: Optional[str] = None,
        *,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        grant: Optional[Grant] = None,
        scope: Union[str, Sequence[str], None] = None,
        token_endpoint: Optional[str] = None,
        revocation_endpoint: Optional[str] = None,
        client_auth: Optional[_ClientAuthMethod] = None,
        client_assertion_key: Optional[str] = None,
        client_assertion_alg: Optional[str] = None,
        client_assertion_kid: Optional[str] = None,
        client_assertion_certificate: Optional[str] = None,
        dpop: bool = False,
        dpop_key: Optional[str] = None,
        dpop_alg: Optional[str] = None,
        provider: Optional[ProviderConfig] = None,
        store: Optional[_Store] = None,
        key: str = "default",
        refresh_skew: _Seconds = ...,
        timeout: Optional[_Seconds] = None,
        ca_file: Union[str, PathLike[str], None] = None,
        ca_file_only: bool = False,
        tls_client_certificate: Union[str, PathLike[str], None] = None,
        tls_client_key: Union[str, PathLike[str], None] = None,
        proxy: Optional[str] = None,
        no_proxy: Optional[str] = None,
        allow_insecure_http: bool = False,
        user_agent: Optional[str] = None,
        prompter: Optional[_AnyPrompter] = None,
        otp_callback: Optional[OtpCallback] = None,
        refresh_policy: Optional[_Policy] = None,
        hooks: Optional[RefreshHooks] = None,
        transport: Optional[Transport] = None,
        token_url: Optional[str] = None,
        revocation_url: Optional[str] = None,
    ) -> Client:
        """An async client over one token session (``async with tessera.Client(...) as client``).

        Args:
            issuer: the server's issuer URL (OIDC discovery finds its endpoints); or give
                ``token_endpoint``. Default ``None``.
            client_id: the OAuth client (required, except for ``StaticToken`` / ``ApiKeyGrant``, and
                for ``JwtBearer(service_account_key=...)``, whose key file gives it).
            client_secret: the client's secret; default ``None`` (a public client).
            grant: how to log in; default ``None``: ``ClientCredentials()``.
            scope: a string or a list of scopes; default ``None``.
            token_endpoint: the token endpoint, without discovery; default ``None`` (with
                ``JwtBearer(service_account_key=...)`` and no ``issuer``: the key file's ``token_uri``;
                with ``WorkloadIdentity(external_account=...)``: the file's ``token_url``).
            revocation_endpoint: with ``token_endpoint``, where ``logout()`` revokes; default ``None``.
            client_auth: how the client authenticates: ``"client_secret_basic"`` (the default with a
                secret; a discovered server that does not list it gets ``"client_secret_post"`` or
                ``"client_secret_jwt"`` if it lists them), ``"client_secret_post"``, ``"client_secret_jwt"`` (an HS256 assertion signed
                with the secret), ``"private_key_jwt"`` (the default with ``client_assertion_key``),
                ``"tls_client_auth"`` (the default with ``tls_client_certificate`` alone),
                ``"self_signed_tls_client_auth"`` or ``"none"`` (the default without any). Default
                ``None``: chosen as said.
            client_assertion_key: ``private_key_jwt``'s private key, as text (a PKCS#8, RSA PKCS#1 or
                EC P-256 SEC1 PEM, or a JWK with ``d``; not a path); default ``None``. Never shown in errors.
            client_assertion_alg: the signing algorithm; default ``None``: from the key (``RS256``,
                ``ES256``, ``EdDSA``).
            client_assertion_kid: the ``kid`` header; default ``None``: the JWK's ``kid``, else none.
            client_assertion_certificate: the key's PEM certificate as text (its chain may follow):
                assertions then carry ``x5t``, ``x5t#S256`` and ``x5c``; default ``None``.
            dpop: DPoP (RFC 9449): tokens bound to a key; API requests then need
                ``request_headers(method, url)`` or the ``tessera.httpx`` / ``tessera.requests``
                adapters (see docs/dpop.md); default ``False``.
            dpop_key: the DPoP private key, as text (PEM or JWK with ``d``); default ``None``: a key
                generated per provider and kept in the store with the tokens. Never shown.
            dpop_alg: ``ES256``, ``EdDSA``, ``RS256``, ``PS256``, ...; default ``None``: ``ES256``
                (generated) or from ``dpop_key``.
            provider: a whole ``ProviderConfig`` instead of the arguments above; default ``None``.
            store: where tokens persist (``FileStore``, ``RedisStore``, your own); default: memory.
            key: the store key; default ``"default"``.
            refresh_skew: seconds (or ``timedelta``) before expiry to refresh; default ``30``.
            timeout: seconds (or ``timedelta``) per request; default ``None``: the provider's, else
                ``30`` (with ``transport=``, handed to a callable in ``HttpRequest.timeout``; an
                httpx client keeps its own timeouts).
            ca_file: a PEM file of CA certificates trusted in addition to the system's roots;
                default ``None``.
            ca_file_only: trust ``ca_file`` alone; default ``False``.
            tls_client_certificate: a PEM file with a TLS client certificate (and chain), presented on
                every request (RFC 8705 mutual TLS: ``client_auth="tls_client_auth"`` or
                ``"self_signed_tls_client_auth"``, the former being the default when the certificate is
                the only credential; certificate-bound tokens); default ``None``.
            tls_client_key: a PEM file with its private key (PKCS#8, PKCS#1 RSA or SEC1 EC); default
                ``None``.
            proxy: ``"http://[user:password@]host:port"`` for every request; default ``None``:
                ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (the password is never shown).
            no_proxy: hosts reached directly (``NO_PROXY`` syntax); default ``None``: ``NO_PROXY``.
            allow_insecure_http: plain ``http://`` to hosts other than loopback; default ``False``.
            user_agent: the ``User-Agent``; default ``None``: ``"tessera/<version>"``.
            prompter: shows device codes and browser URLs (sync or async); default ``None``.
            otp_callback: returns one-time codes (sync or async); default ``None``.
            refresh_policy: what a failed silent refresh does (``RefreshFailureAction.RAISE``, ...);
                default ``None``: reauthenticate when that needs nobody or a callback can reach a person.
            hooks: refresh observers; default ``None``.
            transport: your own HTTP stack for every request (discovery, token, revocation):
                an ``httpx.AsyncClient`` (awaited on your loop), an ``httpx.Client``, or a callable
                ``(HttpRequest) -> HttpResponse``, sync or ``async def``; default ``None``: tessera's own (reqwest). Single flight, stores and
                policies stay tessera's; ``ca_file``, ``ca_file_only``, ``proxy``, ``no_proxy`` and
                ``user_agent`` are then refused (``ConfigurationError``: configure your client).
                See docs/python-transport.md.
            token_url: old name of ``token_endpoint`` (``DeprecationWarning``).
            revocation_url: old name of ``revocation_endpoint`` (``DeprecationWarning``).
        """
    @staticmethod
    def for_resource(
        resource: str,
        *,
        store: Optional[_Store] = None,
        key: str = "default",
        scope: Union[str, Sequence[str], None] = None,
        issuer: Optional[str] = None,
        client_id: Optional[str] = None,
        device_code: bool = False,
        also_for: Optional[Sequence[str]] = None,
        client_name: str = "tessera",
        timeout: Optional[_Seconds] = None,
        allow_insecure_http: bool = False,
        prompter: Optional[_AnyPrompter] = None,
        refresh_skew: _Seconds = ...,
        redirect_uri: Optional[str] = None,
    ) -> Awaitable[Client]:
        """A client for the protected resource at ``resource`` (resource-first login, docs/resource-login.md):
        its authorization server discovered (RFC 9728, RFC 8414), the client registered for this login
        reused or a public one registered (RFC 7591, stored with the tokens), tokens meant for the
        resource (RFC 8707).

        Args:
            resource: the API's URL, which is its identifier (https, or http on loopback).
            store: where the login is kept; default a fresh ``MemoryStore``. Clients for other resources
                of the same server share the login when given the same ``store`` and ``key``.
            key: the login's store key; default ``"default"``.
            scope: default the resource's ``scopes_supported``.
            issuer: which of the resource's authorization servers; default its first.
            client_id: a client the server gave you (nothing is registered); default ``None``.
            device_code: log in with the device code grant; default ``False`` (a browser).
            also_for: more resources of the same server the login names; default none.
            client_name: the name a registration asks for; default ``"tessera"``.
            timeout: per request; default ``None`` (30 s).
            allow_insecure_http: default ``False``.
            prompter: shows the browser URL or device code; default ``None``.
            refresh_skew: refresh this long before expiry; default 30 s.
            redirect_uri: a fixed redirect URI (registered) instead of the loopback receiver: paste
                mode; default ``None``.
        """
    @property
    def key(self) -> str: ...
    @property
    def sync(self) -> SyncClient: ...
    def cached_header(self) -> Optional[str]: ...
    def authorization_header(self) -> Awaitable[str]: ...
    def access_token(self) -> Awaitable[str]: ...
    def tokens(self) -> Awaitable[TokenSet]: ...
    def force_refresh(self) -> Awaitable[str]: ...
    @property
    def uses_dpop(self) -> bool: ...
    def request_headers(self, method: str, url: str) -> Awaitable[Dict[str, str]]:
        """The headers of one API request: ``Authorization``, and ``DPoP`` (a fresh proof) for a DPoP provider.

        Args:
            method: the request's HTTP method.
            url: the request's URL.
        """
    def observe_dpop_response(
        self, url: str, status: int, www_authenticate: Optional[str] = None, dpop_nonce: Optional[str] = None
    ) -> bool:
        """Remembers the answer's ``DPoP-Nonce``; ``True`` when it asks for a retry with it (``use_dpop_nonce``).

        Args:
            url: the URL the request went to.
            status: the answer's HTTP status.
            www_authenticate: its ``WWW-Authenticate`` header, if any.
            dpop_nonce: its ``DPoP-Nonce`` header, if any.
        """
    def step_up(self, url: str, status: int, www_authenticate: Optional[str] = None) -> Awaitable[Optional[str]]:
        """After an answer that may say the token lacks a scope (RFC 6750 §3.1 ``insufficient_scope``):
        ``None`` for any other answer; else a login for the wider scope (when it needs nobody or a
        ``prompter`` can reach a person) and the new ``Authorization`` value, or ``AuthenticationError``
        (``code == "insufficient_scope"``) without anyone to ask.

        Args:
            url: the URL the request went to.
            status: the answer's HTTP status (403, or 401).
            www_authenticate: its ``WWW-Authenticate`` header, if any.
        """
    def login(self, *, otp_callback: Optional[OtpCallback] = None) -> Awaitable[TokenSet]: ...
    def logout(self) -> Awaitable[LogoutResult]: ...
    def clear(self) -> Awaitable[None]: ...
    def __aenter__(self) -> Awaitable[Client]: ...
    def __aexit__(self, *_exc_info: object) -> Awaitable[None]: ...

@final
class SyncClient:
    def __new__(
        cls,
        issuer: Optional[str] = None,
        *,
        client_id: Optional[str] = None,
        client_secret: Optional[str] = None,
        grant: Optional[Grant] = None,
        scope: Union[str, Sequence[str], None] = None,
        token_endpoint: Optional[str] = None,
        revocation_endpoint: Optional[str] = None,
        client_auth: Optional[_ClientAuthMethod] = None,
        client_assertion_key: Optional[str] = None,
        client_assertion_alg: Optional[str] = None,
        client_assertion_kid: Optional[str] = None,
        client_assertion_certificate: Optional[str] = None,
        dpop: bool = False,
        dpop_key: Optional[str] = None,
        dpop_alg: Optional[str] = None,
        provider: Optional[ProviderConfig] = None,
        store: Optional[_Store] = None,
        key: str = "default",
        refresh_skew: _Seconds = ...,
        timeout: Optional[_Seconds] = None,
        ca_file: Union[str, PathLike[str], None] = None,
        ca_file_only: bool = False,
        tls_client_certificate: Union[str, PathLike[str], None] = None,
        tls_client_key: Union[str, PathLike[str], None] = None,
        proxy: Optional[str] = None,
        no_proxy: Optional[str] = None,
        allow_insecure_http: bool = False,
        user_agent: Optional[str] = None,
        prompter: Optional[_AnyPrompter] = None,
        otp_callback: Optional[OtpCallback] = None,
        refresh_policy: Optional[_Policy] = None,
        hooks: Optional[RefreshHooks] = None,
        transport: Optional[Transport] = None,
        token_url: Optional[str] = None,
        revocation_url: Optional[str] = None,
    ) -> SyncClient:
        """A sync client over one token session (``with tessera.SyncClient(...) as client``).

        Args:
            issuer: the server's issuer URL (OIDC discovery finds its endpoints); or give
                ``token_endpoint``. Default ``None``.
            client_id: the OAuth client (required, except for ``StaticToken`` / ``ApiKeyGrant``, and
                for ``JwtBearer(service_account_key=...)``, whose key file gives it).
            client_secret: the client's secret; default ``None`` (a public client).
            grant: how to log in; default ``None``: ``ClientCredentials()``.
            scope: a string or a list of scopes; default ``None``.
            token_endpoint: the token endpoint, without discovery; default ``None`` (with
                ``JwtBearer(service_account_key=...)`` and no ``issuer``: the key file's ``token_uri``;
                with ``WorkloadIdentity(external_account=...)``: the file's ``token_url``).
            revocation_endpoint: with ``token_endpoint``, where ``logout()`` revokes; default ``None``.
            client_auth: how the client authenticates: ``"client_secret_basic"`` (the default with a
                secret; a discovered server that does not list it gets ``"client_secret_post"`` or
                ``"client_secret_jwt"`` if it lists them), ``"client_secret_post"``, ``"client_secret_jwt"`` (an HS256 assertion signed
                with the secret), ``"private_key_jwt"`` (the default with ``client_assertion_key``),
                ``"tls_client_auth"`` (the default with ``tls_client_certificate`` alone),
                ``"self_signed_tls_client_auth"`` or ``"none"`` (the default without any). Default
                ``None``: chosen as said.
            client_assertion_key: ``private_key_jwt``'s private key, as text (a PKCS#8, RSA PKCS#1 or
                EC P-256 SEC1 PEM, or a JWK with ``d``; not a path); default ``None``. Never shown in errors.
            client_assertion_alg: the signing algorithm; default ``None``: from the key (``RS256``,
                ``ES256``, ``EdDSA``).
            client_assertion_kid: the ``kid`` header; default ``None``: the JWK's ``kid``, else none.
            client_assertion_certificate: the key's PEM certificate as text (its chain may follow):
                assertions then carry ``x5t``, ``x5t#S256`` and ``x5c``; default ``None``.
            dpop: DPoP (RFC 9449): tokens bound to a key; API requests then need
                ``request_headers(method, url)`` or the ``tessera.httpx`` / ``tessera.requests``
                adapters (see docs/dpop.md); default ``False``.
            dpop_key: the DPoP private key, as text (PEM or JWK with ``d``); default ``None``: a key
                generated per provider and kept in the store with the tokens. Never shown.
            dpop_alg: ``ES256``, ``EdDSA``, ``RS256``, ``PS256``, ...; default ``None``: ``ES256``
                (generated) or from ``dpop_key``.
            provider: a whole ``ProviderConfig`` instead of the arguments above; default ``None``.
            store: where tokens persist (``FileStore``, ``RedisStore``, your own); default: memory.
            key: the store key; default ``"default"``.
            refresh_skew: seconds (or ``timedelta``) before expiry to refresh; default ``30``.
            timeout: seconds (or ``timedelta``) per request; default ``None``: the provider's, else
                ``30`` (with ``transport=``, handed to a callable in ``HttpRequest.timeout``; an
                httpx client keeps its own timeouts).
            ca_file: a PEM file of CA certificates trusted in addition to the system's roots;
                default ``None``.
            ca_file_only: trust ``ca_file`` alone; default ``False``.
            tls_client_certificate: a PEM file with a TLS client certificate (and chain), presented on
                every request (RFC 8705 mutual TLS: ``client_auth="tls_client_auth"`` or
                ``"self_signed_tls_client_auth"``, the former being the default when the certificate is
                the only credential; certificate-bound tokens); default ``None``.
            tls_client_key: a PEM file with its private key (PKCS#8, PKCS#1 RSA or SEC1 EC); default
                ``None``.
            proxy: ``"http://[user:password@]host:port"`` for every request; default ``None``:
                ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` (the password is never shown).
            no_proxy: hosts reached directly (``NO_PROXY`` syntax); default ``None``: ``NO_PROXY``.
            allow_insecure_http: plain ``http://`` to hosts other than loopback; default ``False``.
            user_agent: the ``User-Agent``; default ``None``: ``"tessera/<version>"``.
            prompter: shows device codes and browser URLs (sync or async); default ``None``.
            otp_callback: returns one-time codes (sync or async); default ``None``.
            refresh_policy: what a failed silent refresh does (``RefreshFailureAction.RAISE``, ...);
                default ``None``: reauthenticate when that needs nobody or a callback can reach a person.
            hooks: refresh observers; default ``None``.
            transport: your own HTTP stack for every request (discovery, token, revocation):
                an ``httpx.Client`` or a callable ``(HttpRequest) -> HttpResponse``
                (an ``httpx.AsyncClient`` raises ``ConfigurationError``: it needs the async ``Client``); default ``None``: tessera's own (reqwest). Single flight, stores and
                policies stay tessera's; ``ca_file``, ``ca_file_only``, ``proxy``, ``no_proxy`` and
                ``user_agent`` are then refused (``ConfigurationError``: configure your client).
                See docs/python-transport.md.
            token_url: old name of ``token_endpoint`` (``DeprecationWarning``).
            revocation_url: old name of ``revocation_endpoint`` (``DeprecationWarning``).
        """
    @staticmethod
    def for_resource(
        resource: str,
        *,
        store: Optional[_Store] = None,
        key: str = "default",
        scope: Union[str, Sequence[str], None] = None,
        issuer: Optional[str] = None,
        client_id: Optional[str] = None,
        device_code: bool = False,
        also_for: Optional[Sequence[str]] = None,
        client_name: str = "tessera",
        timeout: Optional[_Seconds] = None,
        allow_insecure_http: bool = False,
        prompter: Optional[_AnyPrompter] = None,
        refresh_skew: _Seconds = ...,
        redirect_uri: Optional[str] = None,
    ) -> SyncClient:
        """A client for the protected resource at ``resource`` (resource-first login, docs/resource-login.md):
        its authorization server discovered (RFC 9728, RFC 8414), the client registered for this login
        reused or a public one registered (RFC 7591, stored with the tokens), tokens meant for the
        resource (RFC 8707).

        Args:
            resource: the API's URL, which is its identifier (https, or http on loopback).
            store: where the login is kept; default a fresh ``MemoryStore``. Clients for other resources
                of the same server share the login when given the same ``store`` and ``key``.
            key: the login's store key; default ``"default"``.
            scope: default the resource's ``scopes_supported``.
            issuer: which of the resource's authorization servers; default its first.
            client_id: a client the server gave you (nothing is registered); default ``None``.
            device_code: log in with the device code grant; default ``False`` (a browser).
            also_for: more resources of the same server the login names; default none.
            client_name: the name a registration asks for; default ``"tessera"``.
            timeout: per request; default ``None`` (30 s).
            allow_insecure_http: default ``False``.
            prompter: shows the browser URL or device code; default ``None``.
            refresh_skew: refresh this long before expiry; default 30 s.
            redirect_uri: a fixed redirect URI (registered) instead of the loopback receiver: paste
                mode; default ``None``.
        """
    @property
    def key(self) -> str: ...
    @property
    def aio(self) -> Client: ...
    def cached_header(self) -> Optional[str]: ...
    def authorization_header(self) -> str: ...
    def access_token(self) -> str: ...
    def tokens(self) -> TokenSet: ...
    def force_refresh(self) -> str: ...
    @property
    def uses_dpop(self) -> bool: ...
    def request_headers(self, method: str, url: str) -> Dict[str, str]:
        """The headers of one API request: ``Authorization``, and ``DPoP`` (a fresh proof) for a DPoP provider.

        Args:
            method: the request's HTTP method.
            url: the request's URL.
        """
    def observe_dpop_response(
        self, url: str, status: int, www_authenticate: Optional[str] = None, dpop_nonce: Optional[str] = None
    ) -> bool:
        """Remembers the answer's ``DPoP-Nonce``; ``True`` when it asks for a retry with it (``use_dpop_nonce``).

        Args:
            url: the URL the request went to.
            status: the answer's HTTP status.
            www_authenticate: its ``WWW-Authenticate`` header, if any.
            dpop_nonce: its ``DPoP-Nonce`` header, if any.
        """
    def step_up(self, url: str, status: int, www_authenticate: Optional[str] = None) -> Optional[str]:
        """After an answer that may say the token lacks a scope (RFC 6750 §3.1 ``insufficient_scope``):
        ``None`` for any other answer; else a login for the wider scope (when it needs nobody or a
        ``prompter`` can reach a person) and the new ``Authorization`` value, or ``AuthenticationError``
        (``code == "insufficient_scope"``) without anyone to ask.

        Args:
            url: the URL the request went to.
            status: the answer's HTTP status (403, or 401).
            www_authenticate: its ``WWW-Authenticate`` header, if any.
        """
    def login(self, *, otp_callback: Optional[OtpCallback] = None) -> TokenSet: ...
    def logout(self) -> LogoutResult: ...
    def clear(self) -> None: ...
    def __enter__(self) -> SyncClient: ...
    def __exit__(self, *_exc_info: object) -> None: ...

@final
class BasicCredential:
    def __new__(
        cls,
        name: str,
        status: _Status,
        *,
        auth_source: str,
        username: Optional[str] = None,
        login_time: Optional[_Instant] = None,
    ) -> BasicCredential: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def username(self) -> Optional[str]: ...
    @property
    def login_time(self) -> Optional[datetime]: ...
    @property
    def auth_source(self) -> str: ...

@final
class OAuthCredential:
    def __new__(
        cls,
        name: str,
        status: _Status,
        *,
        client_id: Optional[str] = None,
        access_token: Optional[str] = None,
        refresh_token: Optional[str] = None,
        expires_at: Optional[_Instant] = None,
        allows_refresh: bool = False,
    ) -> OAuthCredential: ...
    @property
    def name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def client_id(self) -> Optional[str]: ...
    @property
    def access_token(self) -> Optional[str]: ...
    @property
    def refresh_token(self) -> Optional[str]: ...
    @property
    def expires_at(self) -> Optional[datetime]: ...
    @property
    def allows_refresh(self) -> bool: ...

_Credential = Union[BasicCredential, OAuthCredential]

@final
class ProviderInfo:
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def extra(self) -> Dict[str, _Json]: ...
    @property
    def capabilities(self) -> List[str]: ...
    @property
    def error(self) -> Optional[str]: ...

@final
class ProviderSettings:
    @property
    def name(self) -> str: ...
    @property
    def provider_type(self) -> str: ...
    @property
    def context(self) -> str: ...
    @property
    def origin(self) -> str: ...
    @property
    def store_key(self) -> str: ...
    @property
    def table(self) -> Dict[str, _Json]: ...
    def string(self, field: str) -> Optional[str]: ...
    def required_string(self, field: str) -> str: ...
    def allow_fields(self, allowed: Sequence[str]) -> None: ...
    def secret(self, field: str) -> Optional[str]: ...
    def error(self, field: str, problem: str) -> Exception: ...

@final
class Registry:
    def __new__(cls) -> Registry: ...
    def register_factory(self, type_name: str, factory: Callable[[ProviderSettings], Provider]) -> None: ...
    def type_names(self) -> List[str]: ...

@final
class AuthClient:
    @staticmethod
    def from_toml(
        text: str,
        *,
        registry: Optional[Registry] = None,
        context: Optional[str] = None,
        store: Optional[_Store] = None,
        origin: str = "<string>",
    ) -> AuthClient: ...
    @staticmethod
    def from_file(
        path: Union[str, PathLike[str]],
        *,
        registry: Optional[Registry] = None,
        context: Optional[str] = None,
        store: Optional[_Store] = None,
    ) -> AuthClient: ...
    @property
    def context(self) -> str: ...
    @property
    def sync(self) -> SyncAuthClient: ...
    def provider_names(self) -> List[str]: ...
    def login(self, name: Optional[str] = None) -> Awaitable[Dict[str, bool]]: ...
    def logout(self, name: Optional[str] = None) -> Awaitable[Dict[str, bool]]: ...
    def list_providers(self) -> Awaitable[List[ProviderInfo]]: ...
    def is_authenticated(self, name: Optional[str] = None) -> Awaitable[bool]: ...
    def credential(self, name: str) -> Awaitable[_Credential]: ...
    def refresh_credentials(self, name: Optional[str] = None, *, force: bool = False) -> Awaitable[Dict[str, bool]]: ...
    def headers(self, name: str) -> Awaitable[Dict[str, str]]:
        """The HTTP headers to send for provider ``name``, refreshed as needed (values are secrets).

        Args:
            name: the provider's name in the context (required).

        A Python provider's own ``get_headers()`` is used as is; a provider with a token and no
        headers gives ``{"authorization": "Bearer <token>"}``. Raises ``ConfigurationError`` for an
        unknown name or a provider with neither, else the provider's own error.
        """
    def token(self, name: str, *, min_valid: _Seconds = 0) -> Awaitable[TokenSet]:
        """The ``TokenSet`` of provider ``name``.

        Args:
            name: the provider's name in the context (required).
            min_valid: seconds (or a ``timedelta``) the access token must stay valid; default ``0``.
                A token with less left is refreshed (or obtained again when that needs nobody).

        Raises ``ConfigurationError`` for an unknown name or a provider without tokens. A Python
        provider's ``token()`` may return a ``str`` (no expiry: ``min_valid`` is not checked).
        """
    def logged_in(self, name: Optional[str] = None) -> Awaitable[Optional[str]]:
        """quilt3's ``logged_in()``: where a provider is logged in, else ``None``.

        Args:
            name: the provider; default ``None``: the first authenticated one, in configuration order.

        The answer is the ``url``, ``issuer`` or ``token_endpoint`` of its ``auth_context()``, or
        its name for a provider that talks to no server (a static token). No network; errors and
        unknown names give ``None``.
        """
    def __aenter__(self) -> Awaitable[AuthClient]: ...
    def __aexit__(self, *_exc_info: object) -> Awaitable[None]: ...

@final
class SyncAuthClient:
    @staticmethod
    def from_toml(
        text: str,
        *,
        registry: Optional[Registry] = None,
        context: Optional[str] = None,
        store: Optional[_Store] = None,
        origin: str = "<string>",
    ) -> SyncAuthClient: ...
    @staticmethod
    def from_file(
        path: Union[str, PathLike[str]],
        *,
        registry: Optional[Registry] = None,
        context: Optional[str] = None,
        store: Optional[_Store] = None,
    ) -> SyncAuthClient: ...
    @property
    def context(self) -> str: ...
    @property
    def aio(self) -> AuthClient: ...
    def provider_names(self) -> List[str]: ...
    def login(self, name: Optional[str] = None) -> Dict[str, bool]: ...
    def logout(self, name: Optional[str] = None) -> Dict[str, bool]: ...
    def list_providers(self) -> List[ProviderInfo]: ...
    def is_authenticated(self, name: Optional[str] = None) -> bool: ...
    def credential(self, name: str) -> _Credential: ...
    def refresh_credentials(self, name: Optional[str] = None, *, force: bool = False) -> Dict[str, bool]: ...
    def headers(self, name: str) -> Dict[str, str]:
        """The HTTP headers to send for provider ``name``; see ``AuthClient.headers``.

        Args:
            name: the provider's name in the context (required).
        """
    def token(self, name: str, *, min_valid: _Seconds = 0) -> TokenSet:
        """The ``TokenSet`` of provider ``name``; see ``AuthClient.token``.

        Args:
            name: the provider's name in the context (required).
            min_valid: seconds (or a ``timedelta``) the access token must stay valid; default ``0``.
        """
    def logged_in(self, name: Optional[str] = None) -> Optional[str]:
        """quilt3's ``logged_in()``; see ``AuthClient.logged_in``.

        Args:
            name: the provider; default ``None``: the first authenticated one.
        """
    def __enter__(self) -> SyncAuthClient: ...
    def __exit__(self, *_exc_info: object) -> None: ...

@final
class JsonEngine:
    def __new__(cls) -> JsonEngine: ...
    def register(self, key: str, provider_json: str) -> JsonEngine: ...
    def ensure(self, key: str, now_ms: Optional[int] = None) -> str: ...
    def refresh(self, key: str, now_ms: Optional[int] = None) -> str: ...
    def login(self, key: str, now_ms: Optional[int] = None) -> str: ...
    def login_with(self, key: str, inputs_json: str, now_ms: Optional[int] = None) -> str: ...
    def logout(self, key: str, now_ms: Optional[int] = None) -> str: ...
    def handle(self, event_json: str, now_ms: Optional[int] = None) -> str: ...
    def tokens(self, key: str) -> Optional[str]: ...
    def set_tokens(self, key: str, tokens_json: Optional[str]) -> None: ...
    def register_chain(self, key: str, chain_json: str) -> None: ...
    def domain_access(self, key: str, domain_id: str, now_ms: Optional[int] = None) -> str: ...
    def refresh_domain_access(self, key: str, domain_id: str, now_ms: Optional[int] = None) -> str: ...
    def cached_domain_access(self, key: str, domain_id: str, now_ms: Optional[int] = None) -> Optional[str]: ...
    def chain_state(self, key: str) -> Optional[str]: ...
    def set_chain_state(self, key: str, state_json: str) -> None: ...
    def set_entropy(self, entropy_base64: str) -> None: ...

def current_time_ms() -> int: ...
def is_expired(expires_at_ms: Optional[int], now_ms: Optional[int] = None) -> bool: ...
def is_near_expiry(expires_at_ms: Optional[int], threshold_ms: int, now_ms: Optional[int] = None) -> bool: ...

@final
class ApiKey:
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def status(self) -> _KeyStatus: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def expires_at(self) -> datetime: ...
    @property
    def last_used_at(self) -> Optional[datetime]: ...
    @property
    def created_by_email(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ApiKeys:
    def __new__(cls, credentials: Union[Client, SyncClient, str], base_url: str) -> ApiKeys: ...
    @property
    def base_url(self) -> str: ...
    @property
    def sync(self) -> SyncApiKeys: ...
    def create(self, name: str, expires_in_days: Optional[int] = 90) -> Awaitable[Tuple[ApiKey, str]]:
        """Creates a key; returns ``(ApiKey, secret)``: the secret is never shown again.

        Args:
            name: the key's name (required, not empty).
            expires_in_days: its lifetime, an ``int`` from 1 to 365; default ``90``.

        A lifetime outside 1–365 raises ``ConfigurationError`` (a ``ValueError``) before anything
        is sent; a value that is not an ``int`` raises ``TypeError``.
        """
    def list(
        self,
        *,
        name: Optional[str] = None,
        fingerprint: Optional[str] = None,
        status: Optional[_KeyStatusFilter] = None,
    ) -> Awaitable[List[ApiKey]]: ...
    def get(self, id: str) -> Awaitable[Optional[ApiKey]]: ...
    def revoke(self, id: str) -> Awaitable[ApiKey]: ...
    def revoke_by_secret(self, secret: str) -> Awaitable[ApiKey]: ...
    def admin(self) -> AdminApiKeys: ...

@final
class SyncApiKeys:
    def __new__(cls, credentials: Union[Client, SyncClient, str], base_url: str) -> SyncApiKeys: ...
    @property
    def base_url(self) -> str: ...
    def create(self, name: str, expires_in_days: Optional[int] = 90) -> Tuple[ApiKey, str]:
        """Creates a key; returns ``(ApiKey, secret)``: the secret is never shown again.

        Args:
            name: the key's name (required, not empty).
            expires_in_days: its lifetime, an ``int`` from 1 to 365; default ``90``.

        A lifetime outside 1–365 raises ``ConfigurationError`` (a ``ValueError``) before anything
        is sent; a value that is not an ``int`` raises ``TypeError``.
        """
    def list(
        self,
        *,
        name: Optional[str] = None,
        fingerprint: Optional[str] = None,
        status: Optional[_KeyStatusFilter] = None,
    ) -> List[ApiKey]: ...
    def get(self, id: str) -> Optional[ApiKey]: ...
    def revoke(self, id: str) -> ApiKey: ...
    def revoke_by_secret(self, secret: str) -> ApiKey: ...
    def admin(self) -> SyncAdminApiKeys: ...

@final
class AdminApiKeys:
    def list(
        self,
        *,
        email: Optional[str] = None,
        key_name: Optional[str] = None,
        status: Optional[_KeyStatusFilter] = None,
    ) -> Awaitable[List[ApiKey]]: ...
    def get(self, id: str) -> Awaitable[Optional[ApiKey]]: ...
    def revoke(self, id: str) -> Awaitable[ApiKey]: ...

@final
class SyncAdminApiKeys:
    def list(
        self,
        *,
        email: Optional[str] = None,
        key_name: Optional[str] = None,
        status: Optional[_KeyStatusFilter] = None,
    ) -> List[ApiKey]: ...
    def get(self, id: str) -> Optional[ApiKey]: ...
    def revoke(self, id: str) -> ApiKey: ...

@final
class Stage:
    @staticmethod
    def http_post(url: str) -> Stage: ...
    @staticmethod
    def http_get(url: str) -> Stage: ...
    @staticmethod
    def token_exchange(
        token_url: str,
        client: ClientAuth,
        *,
        audience: Union[str, Sequence[str], None] = None,
        resource: Union[str, Sequence[str], None] = None,
        scope: Union[str, Sequence[str], None] = None,
        requested_token_type: Optional[str] = None,
    ) -> Stage: ...
    @property
    def endpoint(self) -> str: ...

@final
class ChainConfig:
    def __new__(cls, discovery: Stage, domain: Stage, *, refresh_threshold: _Seconds = ...) -> ChainConfig: ...
    @property
    def refresh_threshold(self) -> float: ...

@final
class DomainServer:
    @property
    def url(self) -> str: ...
    @property
    def extra(self) -> Dict[str, _Json]: ...

@final
class DomainAccess:
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def domain_server(self) -> DomainServer: ...
    @property
    def access_token(self) -> str: ...
    @property
    def token_type(self) -> str: ...
    @property
    def authorization_header(self) -> str: ...
    @property
    def expires_at(self) -> Optional[datetime]: ...

@final
class DomainClient:
    def __new__(cls, network_client: Union[Client, SyncClient], chain: ChainConfig) -> DomainClient: ...
    @staticmethod
    def from_state(state: str, chain: ChainConfig) -> DomainClient: ...
    def set_credentials(self, network: Union[ProviderConfig, Client, SyncClient]) -> Awaitable[None]: ...
    def get_domain_access(self, domain_id: str) -> Awaitable[DomainAccess]: ...
    def cached_domain_access(self, domain_id: str) -> Optional[DomainAccess]: ...
    def cached_domain_ids(self) -> List[str]: ...
    def invalidate(self, domain_id: str) -> None: ...
    def authenticate(self) -> Awaitable[TokenSet]: ...
    def authenticate_discovery(self) -> Awaitable[TokenSet]: ...
    def save_state(self) -> str: ...
    @property
    def sync(self) -> SyncDomainClient: ...
    def close(self) -> None:
        """Closes the client: drops the derived tokens it holds (discovery, every domain), its HTTP
        connections and a network login it made itself (``set_credentials(ProviderConfig)``). A
        ``Client`` you passed in stays open. Afterwards every method that could send raises
        ``RuntimeError``; ``cached_domain_access`` answers ``None``. Idempotent; sends nothing (it
        is not a logout). Its ``sync`` view is closed with it."""
    def __aenter__(self) -> Awaitable[DomainClient]: ...
    def __aexit__(self, *_exc_info: object) -> Awaitable[None]:
        """Closes the client (``close()``)."""

@final
class SyncDomainClient:
    def __new__(cls, network_client: Union[Client, SyncClient], chain: ChainConfig) -> SyncDomainClient: ...
    @staticmethod
    def from_state(state: str, chain: ChainConfig) -> SyncDomainClient: ...
    def set_credentials(self, network: Union[ProviderConfig, Client, SyncClient]) -> None: ...
    def get_domain_access(self, domain_id: str) -> DomainAccess: ...
    def cached_domain_access(self, domain_id: str) -> Optional[DomainAccess]: ...
    def cached_domain_ids(self) -> List[str]: ...
    def invalidate(self, domain_id: str) -> None: ...
    def authenticate(self) -> TokenSet: ...
    def authenticate_discovery(self) -> TokenSet: ...
    def save_state(self) -> str: ...
    @property
    def aio(self) -> DomainClient: ...
    def close(self) -> None:
        """Closes the client; see ``DomainClient.close``."""
    def __enter__(self) -> SyncDomainClient: ...
    def __exit__(self, *_exc_info: object) -> None:
        """Closes the client (``close()``)."""
