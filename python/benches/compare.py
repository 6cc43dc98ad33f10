"""tessera side by side with the Python token libraries people use, in one run.

    python/benches/compare.sh            # builds the release wheel, a venv with the peers, runs this

Per call: handing out a header (or token) from a valid cached token, in this process —
tessera `SyncClient.authorization_header()` and `await Client.authorization_header()`, msal
`acquire_token_silent` (a password login's account), google-auth `Credentials.before_request`, httpx-auth's client-credentials
`auth_flow`, authlib `ensure_active_token`. Each library first gets its token from the reference
IdP (`tessera idp serve`, loopback) the way it normally would, and each measured call is checked to
send nothing (the IdP's token-request counter does not move).

Per process: a script that prints a cached token (wall time from spawn to exit, median): tessera
(`FileStore` + `SyncClient.access_token()`), msal (`SerializableTokenCache` from a file, as in
benches/token_fast_path), authlib (a token dict from a file + `ensure_active_token`), and the
interpreter alone. Then the wheel's size.

Prints a Markdown table (benches/README.md keeps the latest).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import tessera

CLIENT_ID = "confidential-client"
CLIENT_SECRET = "confidential-secret"
SCOPE = "api:read"
REPEATS = 5
PROCESS_RUNS = int(os.environ.get("PROCESS_RUNS", "20"))
ROOT = Path(__file__).resolve().parents[2]


class Idp:
    """The reference IdP binary on an ephemeral loopback port."""

    def __init__(self, binary: str) -> None:
        self.process = subprocess.Popen(
            [binary, "idp", "serve", "--access-ttl", "3600", "--test-endpoints"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line: List[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(30)
        if not line or not line[0].strip():
            self.process.kill()
            raise RuntimeError("the IdP did not start within 30 s")
        self.issuer = line[0].strip()

    def token_requests(self) -> int:
        with urllib.request.urlopen(self.issuer + "/_test/stats", timeout=10) as response:
            return int(json.loads(response.read())["token_requests"])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def per_call_ns(call: Callable[[], object], n: int) -> float:
    """Best of REPEATS runs of n calls, in ns per call (minus nothing: loop overhead included)."""
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(n):
            call()
        best = min(best, (time.perf_counter() - start) / n * 1e9)
    return best


def per_await_ns(make: Callable[[], Any], n: int) -> float:
    async def run() -> float:
        best = float("inf")
        for _ in range(REPEATS):
            start = time.perf_counter()
            for _ in range(n):
                await make()
            best = min(best, (time.perf_counter() - start) / n * 1e9)
        return best

    return asyncio.run(run())


def no_network(idp: Idp, label: str, measure: Callable[[], float]) -> float:
    before = idp.token_requests()
    result = measure()
    after = idp.token_requests()
    if after != before:
        raise RuntimeError(f"{label}: {after - before} token requests during the measurement")
    return result


def bench_tessera(idp: Idp) -> List[Tuple[str, float]]:
    grant = tessera.Password("alice", "alice-password")  # as msal's account below
    client = tessera.SyncClient(idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scope=SCOPE, grant=grant)
    client.authorization_header()
    sync_ns = no_network(idp, "tessera sync", lambda: per_call_ns(client.authorization_header, 1_000_000))
    aio = client.aio
    await_ns = no_network(idp, "tessera await", lambda: per_await_ns(aio.authorization_header, 1_000_000))
    return [("tessera `SyncClient.authorization_header()`", sync_ns), ("tessera `await Client.authorization_header()`", await_ns)]


MSAL_AUTHORITY = "https://login.example.com/tenant"
MSAL_TOKEN_ENDPOINT = MSAL_AUTHORITY + "/oauth2/v2.0/token"


class MsalLoopback:
    """msal's `http_client`: msal accepts only https endpoints, so the authority is a name that this
    adapter answers locally (tenant discovery), and its token endpoint goes to the loopback IdP.
    Anything else is refused: nothing leaves the machine. `calls` counts every request msal makes."""

    def __init__(self, issuer: str) -> None:
        import requests

        self.issuer = issuer
        self.session = requests.Session()
        self.session.trust_env = False
        self.calls = 0

    def get(self, url: str, **kwargs: Any) -> Any:
        import requests

        self.calls += 1
        if url.startswith(MSAL_AUTHORITY) and "openid-configuration" in url:
            body: Dict[str, str] = {
                "issuer": MSAL_AUTHORITY + "/v2.0",
                "authorization_endpoint": MSAL_AUTHORITY + "/oauth2/v2.0/authorize",
                "token_endpoint": MSAL_TOKEN_ENDPOINT,
            }
        elif url.startswith("https://login.example.com/common/userrealm/"):
            body = {"account_type": "Managed", "domain_name": "example.com"}  # not federated: ROPC as is
        else:
            raise RuntimeError(f"msal asked for {url}: refused (loopback only)")
        response = requests.models.Response()
        response.status_code = 200
        response._content = json.dumps(body).encode()
        return response

    def post(self, url: str, **kwargs: Any) -> Any:
        self.calls += 1
        if url != MSAL_TOKEN_ENDPOINT:
            raise RuntimeError(f"msal posted to {url}: refused (loopback only)")
        return self.session.post(self.issuer + "/token", **kwargs)

    def close(self) -> None:
        self.session.close()


def msal_app(idp: Idp, cache: Any = None) -> Tuple[Any, MsalLoopback]:
    import msal

    http = MsalLoopback(idp.issuer)
    app = msal.ConfidentialClientApplication(
        CLIENT_ID, client_credential=CLIENT_SECRET, authority=MSAL_AUTHORITY, instance_discovery=False,
        validate_authority=False, http_client=http, token_cache=cache,
    )
    return app, http


def bench_msal(idp: Idp) -> Tuple[str, float]:
    app, http = msal_app(idp)
    first = app.acquire_token_by_username_password("alice", "alice-password", scopes=[SCOPE])
    if "access_token" not in first:
        raise RuntimeError(f"msal: {first}")
    [account] = app.get_accounts()

    def silent() -> object:
        result = app.acquire_token_silent([SCOPE], account=account)
        assert result and result["access_token"] == first["access_token"]
        return result

    calls = http.calls
    result = no_network(idp, "msal", lambda: per_call_ns(silent, 20_000))
    if http.calls != calls:
        raise RuntimeError(f"msal made {http.calls - calls} HTTP requests during the measurement")
    return "msal `acquire_token_silent(scopes, account)`", result


def bench_google_auth(idp: Idp) -> Tuple[str, float]:
    import google.auth.transport.requests
    import google.oauth2.credentials

    token = tessera.SyncClient(idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET).access_token()
    expiry = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + datetime.timedelta(hours=1)
    credentials = google.oauth2.credentials.Credentials(token, expiry=expiry)
    request = google.auth.transport.requests.Request()
    url = idp.issuer + "/api/whoami"

    def before_request() -> None:
        headers: Dict[str, str] = {}
        credentials.before_request(request, "GET", url, headers)
        assert headers["authorization"] == "Bearer " + token

    return "google-auth `before_request`", no_network(idp, "google-auth", lambda: per_call_ns(before_request, 200_000))


def bench_httpx_auth(idp: Idp) -> Tuple[str, float]:
    import httpx
    import httpx_auth

    auth = httpx_auth.OAuth2ClientCredentials(
        idp.issuer + "/token", client_id=CLIENT_ID, client_secret=CLIENT_SECRET, scope=SCOPE
    )
    url = idp.issuer + "/api/whoami"
    with httpx.Client(auth=auth) as http:
        http.get(url).raise_for_status()  # obtains and caches the token
    request = httpx.Request("GET", url)

    def flow() -> None:
        authenticated = next(auth.auth_flow(request))
        assert authenticated.headers["authorization"].startswith("Bearer ")

    return "httpx-auth `OAuth2ClientCredentials` flow", no_network(idp, "httpx-auth", lambda: per_call_ns(flow, 100_000))


def bench_authlib(idp: Idp) -> Tuple[str, float]:
    from authlib.integrations.httpx_client import OAuth2Client

    client = OAuth2Client(CLIENT_ID, CLIENT_SECRET, token_endpoint=idp.issuer + "/token", scope=SCOPE)
    client.fetch_token(grant_type="client_credentials")

    def ensure() -> None:
        assert client.ensure_active_token(client.token)

    result = no_network(idp, "authlib", lambda: per_call_ns(ensure, 1_000_000))
    client.close()
    return "authlib `ensure_active_token`", result


TESSERA_SCRIPT = """
import sys, tessera
client = tessera.SyncClient(sys.argv[1], client_id=sys.argv[2], client_secret=sys.argv[3],
                            store=tessera.FileStore(sys.argv[4]), key="bench")
print(client.access_token())
"""

AUTHLIB_SCRIPT = """
import json, sys
from authlib.integrations.httpx_client import OAuth2Client
with open(sys.argv[1]) as f:
    token = json.load(f)
client = OAuth2Client(sys.argv[2], sys.argv[3], token_endpoint=sys.argv[4] + "/token", token=token)
assert client.ensure_active_token(client.token)
print(client.token["access_token"])
"""


def medians_ms(commands: List[Tuple[str, List[str], Optional[str]]]) -> List[Tuple[str, float]]:
    """Median wall time of each command (spawn to exit), the commands interleaved round by round so
    that a burst of load on the machine hits all of them alike; three warm-up rounds."""
    times: Dict[str, List[float]] = {label: [] for label, _, _ in commands}
    for round_ in range(PROCESS_RUNS + 3):
        for label, argv, expect in commands:
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            elapsed = time.perf_counter() - start
            if done.returncode != 0 or (expect is not None and done.stdout.strip() != expect):
                raise RuntimeError(f"{argv}: {done.returncode} {done.stdout!r} {done.stderr[-2000:]}")
            if round_ >= 3:
                times[label].append(elapsed * 1000)
    return [(label, statistics.median(times[label])) for label, _, _ in commands]


def bench_processes(idp: Idp, work: Path) -> List[Tuple[str, float]]:
    import msal

    # tessera: a FileStore holding a valid token (as `tessera login` or an earlier run leaves it).
    store_dir = work / "tessera"
    seeded = tessera.SyncClient(idp.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                store=tessera.FileStore(str(store_dir)), key="bench")
    token = seeded.access_token()
    tessera_script = work / "tessera_token.py"
    tessera_script.write_text(TESSERA_SCRIPT)
    # msal: the cache an msal app serialized after acquiring the token.
    cache = msal.SerializableTokenCache()
    app, _ = msal_app(idp, cache)
    msal_token = app.acquire_token_for_client([SCOPE])["access_token"]
    (work / "msal_cache.json").write_text(cache.serialize())
    # authlib: the token dict an OAuth2Client fetched, saved as JSON.
    from authlib.integrations.httpx_client import OAuth2Client

    with OAuth2Client(CLIENT_ID, CLIENT_SECRET, token_endpoint=idp.issuer + "/token", scope=SCOPE) as client:
        authlib_token = dict(client.fetch_token(grant_type="client_credentials"))
    (work / "authlib_token.json").write_text(json.dumps(authlib_token))
    authlib_script = work / "authlib_token.py"
    authlib_script.write_text(AUTHLIB_SCRIPT)

    python = sys.executable
    before = idp.token_requests()
    rows = medians_ms([
        ("`python tessera_token.py` (FileStore + `SyncClient.access_token()`)",
         [python, str(tessera_script), idp.issuer, CLIENT_ID, CLIENT_SECRET, str(store_dir)], token),
        ("`python msal_token.py` (SerializableTokenCache, benches/token_fast_path)",
         [python, str(ROOT / "benches/token_fast_path/msal_token.py"), str(work / "msal_cache.json"), CLIENT_ID, SCOPE],
         msal_token),
        ("`python authlib_token.py` (token JSON + `ensure_active_token`)",
         [python, "-W", "ignore", str(authlib_script), str(work / "authlib_token.json"), CLIENT_ID, CLIENT_SECRET,
          idp.issuer], authlib_token["access_token"]),
        ("`python -c pass` (interpreter start)", [python, "-c", "pass"], None),
    ])
    if idp.token_requests() != before:
        raise RuntimeError("a per-process script sent a token request")
    return rows


def main() -> None:
    binary = os.environ.get("TESSERA_BIN") or str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "tessera")
    idp = Idp(binary)
    try:
        calls = bench_tessera(idp)
        for bench in (bench_msal, bench_google_auth, bench_httpx_auth, bench_authlib):
            calls.append(bench(idp))
        with tempfile.TemporaryDirectory() as work:
            processes = bench_processes(idp, Path(work))
    finally:
        idp.stop()
    versions = {}
    for name, module in (("msal", "msal"), ("google-auth", "google.auth"), ("httpx-auth", "httpx_auth"), ("authlib", "authlib")):
        versions[name] = getattr(__import__(module, fromlist=["__version__"]), "__version__", "?")
    print(f"CPython {platform.python_version()}, tessera {tessera.__version__}, "
          + ", ".join(f"{name} {version}" for name, version in versions.items()))
    print()
    print("| per call, cached token | ns/call |")
    print("| --- | --- |")
    for label, ns in calls:
        print(f"| {label} | {ns:,.0f} |")
    print()
    print(f"| per process, print a cached token (median of {PROCESS_RUNS}) | ms |")
    print("| --- | --- |")
    for label, ms in processes:
        print(f"| {label} | {ms:.1f} |")
    wheel = os.environ.get("TESSERA_WHEEL")
    if wheel:
        print()
        print(f"Wheel: {Path(wheel).name}, {Path(wheel).stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
