"""Token requests through a corporate proxy that wants a password, trusting a private CA: what an
``httpx.Client(proxy=..., verify=...)`` handed to a TokenManager did, as tessera keywords."""

import os

import tessera

provider = tessera.ProviderConfig(
    tessera.ClientAuth.basic(os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"]),
    tessera.Endpoints.discover(os.environ["TESSERA_ISSUER"]),
    tessera.Password(os.environ["USERNAME"], os.environ["PASSWORD"]),
    ca_file=os.environ["CA_FILE"],  # trusted in addition to the system's roots
    proxy=os.environ["PROXY_URL"],  # http://user:password@proxy.corp.example:3128
    no_proxy="localhost,.corp.internal",  # reached directly
    timeout=10,  # seconds per request
    user_agent="billing-sync/1.4",
)
print(provider)  # the proxy's password shows as ***

with tessera.SyncClient(provider=provider, key="billing") as client:
    print("token obtained:", client.authorization_header().startswith("Bearer "))
