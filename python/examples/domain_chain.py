"""A chain of tokens: one network login, a discovery token, then one access token per domain.
The chain's state is saved to a file and restored by the next process without any request.

Environment: TESSERA_ISSUER, CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD, STATE_FILE.
"""

import asyncio
import os
from pathlib import Path

import tessera

issuer = os.environ["TESSERA_ISSUER"]
chain = tessera.ChainConfig(
    discovery=tessera.Stage.http_post(issuer + "/chain/discovery"),
    domain=tessera.Stage.http_post(issuer + "/chain/domains/{domain_id}/access"),
    refresh_threshold=60,  # re-derive a token a minute before it expires
)
network = tessera.Client(
    issuer,
    client_id=os.environ["CLIENT_ID"],
    client_secret=os.environ["CLIENT_SECRET"],
    grant=tessera.Password(os.environ["USERNAME"], os.environ["PASSWORD"]),
)
state_file = Path(os.environ["STATE_FILE"])


async def first_process() -> None:
    # Like auki's Client: `async with` closes it on exit (its derived tokens and connections are
    # dropped; the network client, which is ours, stays open).
    async with tessera.DomainClient(network, chain) as client:
        for domain_id in ("alpha", "beta", "gamma"):
            access = await client.get_domain_access(domain_id)  # one login, one discovery, one call each
            print(f"{access.id}: {access.name} at {access.domain_server.url}, expires {access.expires_at:%H:%M}")
        # Tokens only, never the password or client secret; still, keep it like a token (mode 0600).
        state_file.write_text(client.save_state())
        state_file.chmod(0o600)
    print("closed:", client.cached_domain_ids())


async def next_process() -> None:
    client = tessera.DomainClient.from_state(state_file.read_text(), chain)
    access = await client.get_domain_access("beta")  # served from the state: no request
    print("restored:", access.id, access.authorization_header[:7])
    await client.set_credentials(network)  # so that expired tokens can be derived again


asyncio.run(first_process())
asyncio.run(next_process())
