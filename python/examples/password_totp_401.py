"""Password + TOTP for a service account, and what to do when an API answers 401.

The TOTP code is generated from the shared secret for every login, so the client logs in again by
itself when its refresh token dies. When an API rejects a token that looked valid (revoked, or the
server's clock runs ahead), `force_refresh()` gets a new one at once; concurrent callers share it.

Environment: TESSERA_ISSUER, CLIENT_ID, CLIENT_SECRET, USERNAME, PASSWORD, TOTP_SECRET, TOKEN_DIR.
"""

import os

import httpx

import tessera

issuer = os.environ["TESSERA_ISSUER"]
client = tessera.SyncClient(
    issuer,
    client_id=os.environ["CLIENT_ID"],
    client_secret=os.environ["CLIENT_SECRET"],
    grant=tessera.Password(os.environ["USERNAME"], os.environ["PASSWORD"], totp_secret=os.environ["TOTP_SECRET"]),
    store=tessera.FileStore(os.environ["TOKEN_DIR"]),
)

with httpx.Client(timeout=10) as http:
    header = client.authorization_header()
    me = http.get(issuer + "/api/whoami", headers={"Authorization": header})
    print("first call:", me.status_code, me.json()["sub"])

    # Someone revokes the token server-side (here: RFC 7009 revocation of the access token).
    http.post(issuer + "/revoke", data={"token": header.removeprefix("Bearer "), "token_type_hint": "access_token"},
              auth=(os.environ["CLIENT_ID"], os.environ["CLIENT_SECRET"]))
    rejected = http.get(issuer + "/api/whoami", headers={"Authorization": client.authorization_header()})
    print("after revocation:", rejected.status_code)

    # By hand: on a 401, force one refresh and retry once.
    if rejected.status_code == 401:
        retried = http.get(issuer + "/api/whoami", headers={"Authorization": client.force_refresh()})
        print("after force_refresh:", retried.status_code)

# Or let the adapter do exactly that (one refresh, one retry) for every request.
import tessera.httpx  # noqa: E402

with httpx.Client(auth=tessera.httpx.Auth(client), timeout=10) as api:
    print("with the adapter:", api.get(issuer + "/api/whoami").status_code)
