"""The Python peer of `tessera token`'s fast path: read a cached access token with msal.

Loads an msal SerializableTokenCache from a file, finds the access token for the client and
scope, checks that it is valid for more than 30 s (tessera's refresh skew), and prints it.
Exit 4 when there is none (like `tessera token` when authentication is required).

Usage: python msal_token.py CACHE_FILE CLIENT_ID SCOPE
"""

import sys
import time

import msal

REFRESH_SKEW_SECS = 30


def main() -> int:
    path, client_id, scope = sys.argv[1:4]
    cache = msal.SerializableTokenCache()
    with open(path, encoding="utf-8") as f:
        cache.deserialize(f.read())
    now = time.time()
    for entry in cache.search(
        msal.TokenCache.CredentialType.ACCESS_TOKEN, target=[scope], query={"client_id": client_id}
    ):
        if int(entry["expires_on"]) - REFRESH_SKEW_SECS > now:
            sys.stdout.write(entry["secret"] + "\n")
            return 0
    sys.stderr.write("error: no valid cached token\n")
    return 4


if __name__ == "__main__":
    sys.exit(main())
