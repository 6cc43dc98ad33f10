"""Cost of one DPoP proof from Python: `SyncClient.request_headers()` on a valid DPoP-bound token.

    PYTHONPATH=python/tests ALGS="ES256 EdDSA" python -m pytest -q -s -p conftest python/benches/dpop_proofs.py

Against panva's oidc-provider (the `oidc_provider` fixture of python/tests/conftest.py, loaded as a
plugin by `-p conftest`), which accepts ES256 and EdDSA proofs. Per algorithm: one login, then the
fastest of 10 batches of `request_headers()` (each makes a fresh proof). Used to compare builds of
the wheel (benches/README.md, "The wheel at 3 MB"): run it in turns with each build first on
`PYTHONPATH`.
"""

from __future__ import annotations

import os
import time

import tessera
from conftest import OidcProvider
from test_dpop import sync_client, userinfo

ALGS = os.environ.get("ALGS", "ES256 EdDSA").split()
N = 1000


def test_proof_cost(oidc_provider: OidcProvider) -> None:
    costs = []
    for alg in ALGS:
        client = sync_client(oidc_provider, dpop_alg=alg, store=tessera.MemoryStore())
        client.tokens()
        url = userinfo(oidc_provider)
        fastest = min(_batch(client, url) for _ in range(10))
        costs.append(f"{alg} {fastest / N * 1e6:.1f} us")
    print(f"\nrequest_headers() with a fresh proof: {'  '.join(costs)}  ({tessera.__file__})")


def _batch(client: tessera.SyncClient, url: str) -> float:
    start = time.perf_counter()
    for _ in range(N):
        client.request_headers("GET", url)
    return time.perf_counter() - start
