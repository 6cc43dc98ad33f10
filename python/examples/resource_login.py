"""Log in to an API from its URL alone: its authorization server is discovered, a client
registered (and kept with the tokens), and one login serves a second API of the same server.

Environment: RESOURCE_URL and OTHER_RESOURCE_URL (two APIs of one authorization server), TOKEN_DIR.
`webbrowser` opens the system browser (or $BROWSER).
"""

import json
import os
import sys
import urllib.error
import urllib.request
import webbrowser

import tessera


def open_browser(prompt: tessera.BrowserPrompt) -> None:
    # The loopback receiver on 127.0.0.1 is already listening: open the page and return.
    print(f"Opening {prompt.authorization_url}", file=sys.stderr)
    if not webbrowser.open(prompt.authorization_url):
        print("Open the URL above in a browser on this machine.", file=sys.stderr)


def call(url: str, authorization: str) -> str:
    request = urllib.request.Request(url, headers={"authorization": authorization})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return f"{response.status} aud={json.load(response)['aud']}"
    except urllib.error.HTTPError as error:
        return str(error.code)


api, other = os.environ["RESOURCE_URL"], os.environ["OTHER_RESOURCE_URL"]
store = tessera.FileStore(os.environ["TOKEN_DIR"])

# Nothing configured but the URL: discovery, registration (the first time), then a browser login.
client = tessera.SyncClient.for_resource(api, store=store, key="example", prompter=open_browser)
client.login()
header = client.authorization_header()
print("api:", call(api, header))
print("other API with the same token:", call(other, header))

# The other API of the same server: its own token, from the same login (a refresh, no browser).
other_client = tessera.SyncClient.for_resource(other, store=store, key="example")
print("other API:", call(other, other_client.authorization_header()))
