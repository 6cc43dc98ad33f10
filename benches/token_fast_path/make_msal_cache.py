"""Writes an msal token cache holding one access token (valid one hour) for the benchmark."""

import sys

import msal

path, client_id, scope, token = sys.argv[1:5]
cache = msal.SerializableTokenCache()
cache.add(
    {
        "client_id": client_id,
        "scope": [scope],
        "token_endpoint": "https://login.example.com/common/oauth2/v2.0/token",
        "response": {"access_token": token, "expires_in": 3600, "token_type": "Bearer", "refresh_token": "rt-" + token},
    }
)
with open(path, "w", encoding="utf-8") as f:
    f.write(cache.serialize())
