"""Email one-time-code login: the server mails a code, a callback returns it. Tokens go to a file
store, so the next run (and every other process) reuses them without asking for a code. A client
with a callback logs in by itself when it must (stored token, else a silent refresh, else a code);
a daemon opts out with RAISE.

Environment: TESSERA_ISSUER, CLIENT_ID (a public client allowed the email_otp grant), EMAIL,
TOKEN_DIR, and OUTBOX_URL (where the async callback finds codes: here the test IdP's outbox).
"""

import asyncio
import json
import os
import sys
import urllib.request

import tessera

store = tessera.FileStore(os.environ["TOKEN_DIR"])
grant = tessera.EmailOtp(os.environ["EMAIL"], max_code_attempts=3)


def type_the_code(prompt: tessera.CodePrompt) -> str:
    # Sync: it may block (it runs off the event loop). Asked again after a wrong code.
    if prompt.previous_error:
        print(f"That code was refused ({prompt.previous_error}).", file=sys.stderr)
    print(f"Enter the {prompt.channel} code sent to {prompt.destination} (attempt {prompt.attempt}):",
          file=sys.stderr, flush=True)
    return sys.stdin.readline().strip()


async def read_the_mailbox(prompt: tessera.CodePrompt) -> str:
    # Async: e.g. a test mailbox or a chat bot. Raising here ends the login with that exception.
    def newest() -> str:
        with urllib.request.urlopen(os.environ["OUTBOX_URL"], timeout=10) as response:
            return str(json.load(response)[-1]["code"])

    return await asyncio.to_thread(newest)


# 1. A person at a terminal, sync API.
with tessera.SyncClient(
    os.environ["TESSERA_ISSUER"], client_id=os.environ["CLIENT_ID"], grant=grant, store=store,
    key="otp/terminal", otp_callback=type_the_code,
) as client:
    tokens = client.login()
    print("terminal login: refresh token:", tokens.refresh_token is not None)


# 2. An automated login, async API, with the callback given to this login only.
async def main() -> None:
    async with tessera.Client(
        os.environ["TESSERA_ISSUER"], client_id=os.environ["CLIENT_ID"], grant=grant, store=store, key="otp/bot"
    ) as client:
        await client.login(otp_callback=read_the_mailbox)
        header = await client.authorization_header()
        print("bot login: header starts with:", header[:7])


asyncio.run(main())

# 3. Later (another process): the stored tokens serve without a code.
with tessera.SyncClient(
    os.environ["TESSERA_ISSUER"], client_id=os.environ["CLIENT_ID"], grant=grant, store=store, key="otp/terminal"
) as later:
    print("later: cached:", later.authorization_header() == "Bearer " + tokens.access_token)


# 4. A client with a callback needs no login() call: with nothing stored (or a refresh token that
#    no longer works), authorization_header() mails a code and asks the callback.
async def header_logs_in() -> None:
    async with tessera.Client(
        os.environ["TESSERA_ISSUER"], client_id=os.environ["CLIENT_ID"], grant=grant, store=store,
        key="otp/mailbox", otp_callback=read_the_mailbox,
    ) as client:
        header = await client.authorization_header()
        print("mailbox: header starts with:", header[:7])


asyncio.run(header_logs_in())

# 5. A daemon opts out: with RAISE it never mails a code that nobody would type.
with tessera.SyncClient(
    os.environ["TESSERA_ISSUER"], client_id=os.environ["CLIENT_ID"], grant=grant, store=store,
    key="otp/daemon", otp_callback=type_the_code, refresh_policy=tessera.RefreshFailureAction.RAISE,
) as daemon:
    try:
        daemon.authorization_header()
    except tessera.ReauthenticationRequired:
        print("daemon: reauthentication required, no code mailed")
