"""A daemon that must never wait for a person: RAISE on a refresh only a login could fix.

Environment: TESSERA_ISSUER, CLIENT_ID, CLIENT_SECRET, SEED_REFRESH_TOKEN (from a person's login),
TOKEN_DIR (the FileStore directory); JOBS and JOB_INTERVAL (seconds) size the run.
Exit 0 after the jobs, 4 when a person must log in again.
"""

import os
import sys
import time

import httpx

import tessera
import tessera.httpx

RAISE = tessera.RefreshFailureAction.RAISE


class Metrics:
    """Refresh hooks: count and report each refresh (sync methods run off the event loop)."""

    def on_refresh_start(self, context: tessera.RefreshContext) -> None:
        print(f"refresh start: reason={context.reason} source={context.source} attempt={context.attempt}")

    def on_refresh_failure(self, context: tessera.RefreshContext, error: Exception) -> None:
        print(f"refresh failed: {type(error).__name__} attempt={context.attempt}")


def main() -> int:
    issuer = os.environ["TESSERA_ISSUER"]
    client = tessera.SyncClient(
        issuer,
        client_id=os.environ["CLIENT_ID"],
        client_secret=os.environ["CLIENT_SECRET"],
        grant=tessera.RefreshToken(os.environ["SEED_REFRESH_TOKEN"]),
        store=tessera.FileStore(os.environ["TOKEN_DIR"]),
        key="daemon",
        refresh_policy=RAISE,  # or an object with on_refresh_failure(context, error)
        hooks=Metrics(),
    )
    with httpx.Client(auth=tessera.httpx.Auth(client), timeout=10) as api:
        for job in range(int(os.environ.get("JOBS", "3"))):
            try:
                me = api.get(issuer + "/api/whoami").raise_for_status().json()
            except tessera.ReauthenticationRequired as error:
                # Alert a person (`tessera login` on this machine), never prompt from a daemon.
                print(f"job {job}: reauthentication required: {error}")
                return 4
            print(f"job {job}: ran as {me['sub']}")
            time.sleep(float(os.environ.get("JOB_INTERVAL", "1")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
