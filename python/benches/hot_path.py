"""Cost of handing out a header from a valid cached token, sync call and `await` call.

    python python/benches/hot_path.py        # after `maturin develop --release`
    python python/benches/hot_path.py --fastest 30   # one line: the fastest of 30 sync batches

No server needed: a static token without expiry stays cached forever.

`--fastest N` is for comparing builds (benches/README.md, "The wheel at 3 MB"): run it in turns
with each build on the path, so machine load hits every build alike; the fastest batch of each
process is the least disturbed one.
"""

from __future__ import annotations

import asyncio
import sys
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


BATCH = 100_000


def fastest(sync: tessera.SyncClient, batches: int) -> None:
    """Prints the fastest of `batches` batches of `BATCH` sync calls, and of an empty loop."""
    sync_ns = min(bench_sync(sync, BATCH) for _ in range(batches))
    loop_ns = min(bench_empty_loop(BATCH) for _ in range(batches))
    print(f"{sync_ns:.1f} {loop_ns:.1f}  # fastest sync ns/call, empty loop ns ({tessera.__file__})")


def main() -> None:
    grant = tessera.StaticToken("static-token")
    sync = tessera.SyncClient(token_endpoint="http://127.0.0.1:1/token", client_id="bench", grant=grant)
    sync.authorization_header()
    if len(sys.argv) == 3 and sys.argv[1] == "--fastest":
        fastest(sync, int(sys.argv[2]))
        return
    asynchronous = sync.aio
    for _ in range(3):
        loop_ns = bench_empty_loop()
        sync_ns = bench_sync(sync)
        await_ns = asyncio.run(bench_await(asynchronous))
        print(f"sync authorization_header(): {sync_ns:7.1f} ns/call   "
              f"await authorization_header(): {await_ns:7.1f} ns/call   (empty loop {loop_ns:.1f} ns)")


if __name__ == "__main__":
    main()
