"""Workers on many machines share one login through Redis (tokens with a TTL, and a lease lock
with a fencing token around each refresh, so a rotating refresh token is used once).

Environment: TESSERA_ISSUER, CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD, REDIS_URL.
"""

import asyncio
import os

import tessera


def worker() -> tessera.Client:
    # Each worker (a process on its own machine) opens its own store, as configured in TOML:
    #   store = { kind = "redis", url = "env:REDIS_URL", prefix = "billing:" }
    store = tessera.open_store({"kind": "redis", "url": "env:REDIS_URL", "prefix": "billing:"})
    return tessera.Client(
        os.environ["TESSERA_ISSUER"],
        client_id=os.environ["CLIENT_ID"],
        client_secret=os.environ["CLIENT_SECRET"],
        grant=tessera.Password(os.environ["USERNAME"], os.environ["PASSWORD"]),
        store=store,  # or tessera.RedisStore(url, prefix="billing:", lease=3)
        key="billing/alice",
    )


async def main() -> None:
    workers = [worker() for _ in range(8)]
    headers = await asyncio.gather(*(w.authorization_header() for w in workers))
    print("workers:", len(workers), "distinct tokens:", len(set(headers)))
    store = tessera.RedisStore(os.environ["REDIS_URL"], prefix="billing:")
    print("stored under:", store.tokens_key("billing/alice"), "present:", store.load("billing/alice") is not None)


asyncio.run(main())
