"""Cost of handing out a header from a valid cached token, sync call and `await` call.

    python python/benches/hot_path.py        # after `maturin develop --release`

No server needed: a static token without expiry stays cached forever.
"""

from __future__ import annotations

import asyncio
import time

import tessera

N = 1_000_000


def per_call_ns(elapsed_s: float, n: int) -> float:
    return elapsed_s / n * 1e9


def bench_sync(client: tessera.SyncClient, n: int = N) -> float:
    header = client.authorization_header
    start = time.perf_counter()
    for _ in range(n):
        header()
    return per_call_ns(time.perf_counter() - start, n)


async def bench_await(client: tessera.Client, n: int = N) -> float:
    header = client.authorization_header
    start = time.perf_counter()
    for _ in range(n):
        await header()
    return per_call_ns(time.perf_counter() - start, n)


def bench_empty_loop(n: int = N) -> float:
    start = time.perf_counter()
    for _ in range(n):
        pass
    return per_call_ns(time.perf_counter() - start, n)


def main() -> None:
    grant = tessera.StaticToken("static-token")
    sync = tessera.SyncClient(token_url="http://127.0.0.1:1/token", client_id="bench", grant=grant)
    sync.authorization_header()
    asynchronous = sync.aio
    for _ in range(3):
        loop_ns = bench_empty_loop()
        sync_ns = bench_sync(sync)
        await_ns = asyncio.run(bench_await(asynchronous))
        print(f"sync authorization_header(): {sync_ns:7.1f} ns/call   "
              f"await authorization_header(): {await_ns:7.1f} ns/call   (empty loop {loop_ns:.1f} ns)")


if __name__ == "__main__":
    main()
