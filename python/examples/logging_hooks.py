"""tessera's Rust events in Python logging, and refresh hooks for metrics (one async, one sync).

Environment: TESSERA_ISSUER, CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD.
"""

import asyncio
import logging
import os
from collections import Counter

import tessera

# Records come from the logger "tessera"; levels map TRACE→5, DEBUG→10, INFO→20, WARN→30, ERROR→40.
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("tessera").setLevel(logging.DEBUG)


class RefreshMetrics:
    def __init__(self) -> None:
        self.counts: Counter = Counter()

    async def on_refresh_start(self, context: tessera.RefreshContext) -> None:
        self.counts["start", context.reason] += 1  # awaited on the caller's event loop

    def on_refresh_success(self, context: tessera.RefreshContext, tokens: tessera.TokenSet) -> None:
        self.counts["success", context.reason, context.source] += 1  # runs off the event loop's thread

    def on_refresh_failure(self, context: tessera.RefreshContext, error: Exception) -> None:
        self.counts["failure", context.reason, type(error).__name__] += 1


async def main() -> None:
    metrics = RefreshMetrics()
    async with tessera.Client(
        os.environ["TESSERA_ISSUER"],
        client_id=os.environ["CLIENT_ID"],
        client_secret=os.environ["CLIENT_SECRET"],
        grant=tessera.Password(os.environ["USERNAME"], os.environ["PASSWORD"]),
        hooks=metrics,
    ) as client:
        await client.authorization_header()  # first use: logs in
        await client.force_refresh()  # as after a 401
    for event, count in sorted(metrics.counts.items()):
        print("metric", *event, count)


asyncio.run(main())
