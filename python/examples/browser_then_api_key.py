"""On a laptop: sign in with the browser once, then create an API key for CI. In CI: use the key.

Environment: TESSERA_ISSUER, CLIENT_ID (a public client allowed the authorization code grant with
a loopback redirect), TOKEN_DIR. `webbrowser` opens the system browser (or $BROWSER).
"""

import os
import sys
import urllib.request
import webbrowser

import tessera

issuer = os.environ["TESSERA_ISSUER"]


def open_browser(prompt: tessera.BrowserPrompt) -> None:
    # The loopback receiver on 127.0.0.1 is already listening: open the page and return.
    print(f"Opening {prompt.authorization_url}", file=sys.stderr)
    if not webbrowser.open(prompt.authorization_url):
        print("Open the URL above in a browser on this machine.", file=sys.stderr)


# --- On the laptop --------------------------------------------------------------------------
with tessera.SyncClient(
    issuer,
    client_id=os.environ["CLIENT_ID"],
    grant=tessera.Browser(timeout=120),  # PKCE, state and nonce checked; ID token verified
    scope="openid",
    store=tessera.FileStore(os.environ["TOKEN_DIR"]),
    prompter=open_browser,
) as laptop:
    laptop.login()
    keys = tessera.SyncApiKeys(laptop, issuer)
    key, secret = keys.create("ci", expires_in_days=30)
    print(f"created {key.name} ({key.fingerprint}), {key.status}, expires {key.expires_at:%Y-%m-%d}")
    # Store `secret` in the CI system's secret store now: it is never shown again.

# --- In CI (here, the same process): TESSERA_API_KEY holds the key ---------------------------
os.environ["TESSERA_API_KEY"] = secret
with tessera.SyncClient(grant=tessera.ApiKeyGrant()) as ci:
    request = urllib.request.Request(issuer + "/api/whoami", headers={"authorization": ci.authorization_header()})
    with urllib.request.urlopen(request, timeout=10) as response:
        print("CI call:", response.status)

# --- The key leaked? Revoke it by its secret ------------------------------------------------
with tessera.SyncClient(
    issuer, client_id=os.environ["CLIENT_ID"], grant=tessera.Browser(), store=tessera.FileStore(os.environ["TOKEN_DIR"])
) as laptop:  # the stored browser login: no browser this time
    revoked = tessera.SyncApiKeys(laptop, issuer).revoke_by_secret(secret)
    print("revoked:", revoked.status)
