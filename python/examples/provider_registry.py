"""Providers from a TOML configuration with contexts, with a provider type written in Python.

Environment: TESSERA_ISSUER, CLIENT_SECRET, PEER_PASSWORD, CATALOG_KEY.
"""

import os

import tessera

CONFIG = f"""
current_context = "dev"

[[contexts]]
name = "dev"
[[contexts.auth_providers]]
name = "peer"
type = "password"
issuer = "{os.environ['TESSERA_ISSUER']}"
client_id = "confidential-client"
client_secret = "env:CLIENT_SECRET"
username = "alice"
password = "env:PEER_PASSWORD"
[[contexts.auth_providers]]
name = "catalog"
type = "api_key"
key = "env:CATALOG_KEY"

[[contexts]]
name = "prod"
[[contexts.auth_providers]]
name = "catalog"
type = "api_key"
key = "env:PROD_CATALOG_KEY"
"""


class ApiKeyProvider:
    """A provider type of our own: an API key kept in the environment."""

    def __init__(self, settings: tessera.ProviderSettings) -> None:
        settings.allow_fields(["key"])  # a misspelt field fails at load, naming file and field
        settings.required_string("key")  # a reference: resolved at login, not here
        self.settings = settings
        self.key = None

    def description(self) -> str:
        return f"API key from {self.settings.string('key')}"

    def is_authenticated(self) -> bool:
        return self.key is not None

    async def login(self) -> None:  # sync or async methods both work
        key = self.settings.secret("key")
        if not key or not key.startswith("qk_"):
            raise self.settings.error("key", "must start with qk_")
        self.key = key

    def logout(self) -> None:
        self.key = None

    def credential(self) -> tessera.BasicCredential:
        status = "authenticated" if self.key else "available"
        return tessera.BasicCredential(self.settings.name, status, auth_source=self.settings.string("key") or "")

    def get_headers(self) -> dict:  # qlam_core style: what client.headers("catalog") returns
        if self.key is None:
            raise tessera.ReauthenticationRequired("log in to the catalog first")
        return {"x-api-key": self.key}


registry = tessera.Registry()  # the built-in types ...
registry.register_factory("api_key", ApiKeyProvider)  # ... and ours

client = tessera.SyncAuthClient.from_toml(CONFIG, registry=registry)  # or .from_file(path, context="prod")
print("context:", client.context)
print("login:", client.login())  # every provider; client.login("peer") for one
for row in client.list_providers():
    print(f"{row.name:8} {row.type:9} {row.status:14} {row.description}")
print(client.credential("catalog"))
print(client.credential("peer"))  # OAuthCredential: tokens redacted in its repr
print("refresh:", client.refresh_credentials())  # best effort for all; one name raises its error
# Credentials by provider name: header names only here (the values are secrets).
print("catalog headers:", sorted(client.headers("catalog")), "peer headers:", sorted(client.headers("peer")))
print("peer token valid 60 s more:", client.token("peer", min_valid=60).access_valid(60))
print("logged in to the issuer:", client.logged_in() == os.environ["TESSERA_ISSUER"])  # quilt3's logged_in()
print("logout:", client.logout())
print("logged in after logout:", client.logged_in())
