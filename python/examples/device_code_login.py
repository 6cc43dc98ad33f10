"""Device-code login (RFC 8628): show the code, a person approves on another device.

Environment: TESSERA_ISSUER, CLIENT_ID (a public client allowed the device grant), TOKEN_DIR.
"""

import asyncio
import os
import sys

import tessera


async def show(prompt: tessera.DeviceCodePrompt) -> None:
    # Sync or async; return promptly: tessera polls the server once this returns.
    print(f"Open {prompt.verification_uri} and enter {prompt.user_code}", file=sys.stderr)
    print(f"or open {prompt.verification_uri_complete}", flush=True)
    print(f"The code expires at {prompt.expires_at:%H:%M:%S} UTC.", file=sys.stderr)


async def main() -> None:
    async with tessera.Client(
        os.environ["TESSERA_ISSUER"],
        client_id=os.environ["CLIENT_ID"],
        grant=tessera.DeviceCode(),  # device_authorization_endpoint from discovery
        scope="openid offline_access api:read",
        store=tessera.FileStore(os.environ["TOKEN_DIR"]),
        prompter=show,
    ) as client:
        tokens = await client.login()  # shows a code; a silent refresh never does
        print("logged in; refresh token:", tokens.refresh_token is not None)
        print("header starts with:", (await client.authorization_header())[:7])


asyncio.run(main())
