# Captures the browser-login traffic of real servers as seeds for the `authorization_callback` and
# `id_token` fuzz targets, and writes fuzz/fixtures/id_token_keysets.json (the key sets, the ID tokens
# known to be signed by them, and what they must say). Run from the repository root, after
# `cargo build -p tessera-cli` (binary in $CARGO_TARGET_DIR/debug, else target/debug) and `npm ci` in
# interop/oidc-provider:
#
#     python3 fuzz/capture_id_token_seeds.py
#
# For each server it runs an authorization-code login with PKCE S256, state and nonce the way a browser
# does (our IdP: GET /authorize, then its login form; oidc-provider: its dev-interaction login and consent
# forms, cookies kept, redirects followed by hand), keeps the callback URL the server redirected to,
# redeems the code, and keeps the JWKS and the ID token. A denied login gives an error callback.
# A fixed Ed25519 key pair (fuzz/fixtures/fuzz-ed25519.pem, generated on the first run and kept; a test
# key, worthless) signs more claim shapes: no kid, several audiences, the edges of the 60 s leeway.
# Needs Python's `cryptography` package. Only loopback traffic.
import base64, hashlib, http.cookiejar, json, os, re, secrets, subprocess, sys, urllib.error, urllib.parse, urllib.request

root = os.getcwd()
seeds = os.path.join(root, "fuzz", "seeds")
fixtures = os.path.join(root, "fuzz", "fixtures")
os.makedirs(fixtures, exist_ok=True)

# The fuzz target's fixed expectations (fuzz_targets/authorization_callback.rs).
FUZZ_REDIRECT = "http://127.0.0.1:4711/callback"
FUZZ_ISSUER = "https://idp.example"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def write(target, name, data):
    d = os.path.join(seeds, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """One cookie jar, redirects followed by hand until one leaves for the redirect URI."""

    def __init__(self):
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), NoRedirect, urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def go(self, url, form=None, stop_at=None):
        for _ in range(12):
            data = None if form is None else urllib.parse.urlencode(form).encode()
            try:
                resp = self.opener.open(urllib.request.Request(url, data=data), timeout=10)
                status, headers, body = resp.status, resp.headers, resp.read()
            except urllib.error.HTTPError as e:
                status, headers, body = e.code, e.headers, e.read()
            location = headers.get("location")
            if status in (301, 302, 303, 307, 308) and location:
                url = urllib.parse.urljoin(url, location)
                if stop_at and url.startswith(stop_at):
                    return url, None
                form = None
                continue
            return url, body.decode("utf-8", "replace")
        raise SystemExit(f"too many redirects at {url}")


def forms(page_url, html):
    out = []
    for m in re.finditer(r"<form([^>]*)>(.*?)</form>", html, re.S | re.I):
        action = re.search(r'action="([^"]*)"', m.group(1))
        fields = {}
        for inp in re.finditer(r"<input([^>]*)>", m.group(2), re.I):
            name = re.search(r'name="([^"]*)"', inp.group(1))
            value = re.search(r'value="([^"]*)"', inp.group(1))
            if name:
                fields[name.group(1)] = value.group(1) if value else ""
        out.append((urllib.parse.urljoin(page_url, action.group(1) if action else page_url), fields))
    return out


def get_json(url, form=None):
    data = None if form is None else urllib.parse.urlencode(form).encode()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def login(issuer, client_id, redirect_uri, scope, submit, deny=False):
    """An authorization-code login; returns (callback URL, state, nonce, verifier)."""
    verifier = b64(secrets.token_bytes(32))
    state, nonce = b64(secrets.token_bytes(16)), b64(secrets.token_bytes(16))
    _, meta = get_json(issuer + "/.well-known/openid-configuration")
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope,
        "state": state, "nonce": nonce, "code_challenge": b64(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
    })
    browser = Browser()
    url, page = browser.go(meta["authorization_endpoint"] + "?" + query, stop_at=redirect_uri)
    for _ in range(4):
        if page is None:
            return url, state, nonce, verifier, meta
        url, page = submit(browser, url, page, redirect_uri, deny)
    raise SystemExit(f"login at {issuer} did not come back to {redirect_uri}: {page[:500]}")


def submit_tessera(browser, url, page, redirect_uri, deny):
    action, fields = forms(url, page)[0]
    fields.update({"username": "alice", "password": "alice-password", "action": "deny" if deny else "sign-in"})
    return browser.go(action, fields, stop_at=redirect_uri)


def submit_oidc_provider(browser, url, page, redirect_uri, deny):
    abort = re.search(r'href="([^"]*/abort)"', page)
    if deny and abort:
        return browser.go(urllib.parse.urljoin(url, abort.group(1)), stop_at=redirect_uri)
    for action, fields in forms(url, page):
        if fields.get("prompt") == "login":
            fields.update({"login": "alice", "password": "any-password"})
            return browser.go(action, fields, stop_at=redirect_uri)
        if fields.get("prompt") == "consent":
            return browser.go(action, fields, stop_at=redirect_uri)
    raise SystemExit(f"no login or consent form at {url}: {page[:500]}")


def callback_seeds(prefix, callback, state, iss_known):
    """The callback as the server sent it, and with its values replaced by the target's placeholders."""
    write("authorization_callback", prefix, bytes([0]) + callback.encode())
    parts = urllib.parse.urlsplit(callback)
    pairs = []
    for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if name == "state" and value == state:
            value = "{S}"
        elif name == "code":
            value = "{C}"
        elif name == "iss":
            value = FUZZ_ISSUER
        pairs.append(f"{name}={urllib.parse.quote(value, safe='{}:/')}")
    query = "&".join(pairs)
    write("authorization_callback", prefix + "-query", bytes([8]) + query.encode())
    write("authorization_callback", prefix + "-url", bytes([0]) + f"{FUZZ_REDIRECT}?{query}".encode())
    write("authorization_callback", prefix + "-no-issuer", bytes([8 | 4]) + query.encode())
    write("authorization_callback", prefix + "-v6", bytes([8 | 2]) + query.encode())


def capture(prefix, issuer, client_id, redirect_uri, scope, submit):
    callback, state, nonce, verifier, meta = login(issuer, client_id, redirect_uri, scope, submit)
    callback_seeds(prefix, callback, state, True)
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(callback).query))["code"]
    status, tokens = get_json(meta["token_endpoint"], {
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
        "code_verifier": verifier, "client_id": client_id,
    })
    assert status == 200 and "id_token" in tokens, (status, tokens)
    denied, state, _, _, _ = login(issuer, client_id, redirect_uri, scope, submit, deny=True)
    callback_seeds(prefix + "-denied", denied, state, True)
    _, jwks = get_json(meta["jwks_uri"])
    claims = json.loads(unb64(tokens["id_token"].split(".")[1]))
    return {
        "name": prefix, "issuer": meta["issuer"], "client_id": client_id, "nonce": nonce,
        "now": claims["iat"] + 1, "endpoint": meta["token_endpoint"], "jwks": jwks, "tokens": [tokens["id_token"]],
    }


def own_keyset():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = os.path.join(fixtures, "fuzz-ed25519.pem")
    if not os.path.exists(path):
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        with open(path, "wb") as f:
            f.write(pem)
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    x = b64(key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    kid = "fuzz-ed25519"
    issuer, now, nonce = "https://fuzz.example", 1_800_000_000, "fuzz-nonce"

    def sign(claims, header=None):
        head = b64(json.dumps(header or {"alg": "EdDSA", "typ": "JWT", "kid": kid}).encode())
        body = b64(json.dumps(claims).encode())
        return f"{head}.{body}.{b64(key.sign(f'{head}.{body}'.encode()))}"

    base = {"iss": issuer, "sub": "alice", "aud": "fuzz-client", "exp": now + 300, "iat": now, "nonce": nonce}
    good = [
        sign(base),
        sign(base, {"alg": "EdDSA"}),
        sign({**base, "aud": ["fuzz-client", "api"], "azp": "fuzz-client", "email": "alice@example.com"}),
        sign({**base, "exp": now - 59, "iat": now + 59}),
        sign({**base, "iss": issuer + "/", "exp": now + 0.5e9}),
        sign({**base, "exp": 1e300}),
    ]
    bad = {
        "expired-61s": sign({**base, "exp": now - 61}),
        "future-61s": sign({**base, "iat": now + 61}),
        "other-nonce": sign({**base, "nonce": "other"}),
        "other-aud": sign({**base, "aud": "other"}),
        "several-aud-no-azp": sign({**base, "aud": ["fuzz-client", "api"]}),
        "no-sub": sign({k: v for k, v in base.items() if k != "sub"}),
        "unknown-kid": sign(base, {"alg": "EdDSA", "kid": "nope"}),
        "alg-none": b64(b'{"alg":"none"}') + "." + b64(json.dumps(base).encode()) + ".",
        "hs256": b64(b'{"alg":"HS256"}') + "." + b64(json.dumps(base).encode()) + "." + b64(b"0" * 32),
        "string-aud-list": sign({**base, "aud": ["fuzz-client", 5], "azp": "fuzz-client"}),
    }
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}]}
    return {
        "name": "fuzz-ed25519", "issuer": issuer, "client_id": "fuzz-client", "nonce": nonce, "now": now,
        "endpoint": "https://fuzz.example/token", "jwks": jwks, "tokens": good,
    }, bad


def start(cmd, cwd=None, env=None):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd,
                         env={**os.environ, **(env or {})})
    return p, p.stdout.readline().decode().strip()


sets = []
target_dir = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
p, line = start([os.path.join(target_dir, "debug", "tessera"), "idp", "serve"])
try:
    issuer = line.split()[-1].rstrip("/")
    sets.append(capture("tessera-idp", issuer, "tessera-cli", "http://127.0.0.1:38123/callback", "openid email",
                        submit_tessera))
finally:
    p.terminate(); p.wait(timeout=10)

p, line = start(["node", "server.mjs"], cwd=os.path.join(root, "interop", "oidc-provider"), env={"PORT": "0"})
try:
    issuer = json.loads(line)["issuer"]
    sets.append(capture("oidc-provider", issuer, "native-client", "http://127.0.0.1/callback", "openid",
                        submit_oidc_provider))
finally:
    p.terminate(); p.wait(timeout=10)

own, bad = own_keyset()
sets.append(own)
with open(os.path.join(fixtures, "id_token_keysets.json"), "w") as f:
    json.dump(sets, f, indent=1)
    f.write("\n")

# id_token seeds: selector bit 0 clear = a token for key set (selector >> 1); set = a JWKS body.
for index, keyset in enumerate(sets):
    for n, token in enumerate(keyset["tokens"]):
        write("id_token", f"{keyset['name']}-token-{n}", bytes([index << 1]) + token.encode())
    write("id_token", f"{keyset['name']}-token-no-nonce", bytes([(index << 1) | 0x80]) + keyset["tokens"][0].encode())
    body = json.dumps(keyset["jwks"]).encode()
    write("id_token", f"{keyset['name']}-jwks", bytes([1]) + body)
    write("id_token", f"{keyset['name']}-jwks-jwk-set-json", bytes([1 | (1 << 4)]) + body)
for name, token in bad.items():
    write("id_token", f"fuzz-ed25519-{name}", bytes([2 << 1]) + token.encode())
write("id_token", "all-jwks", bytes([1]) + json.dumps({"keys": [k for s in sets for k in s["jwks"]["keys"]]}).encode())
print("ok:", ", ".join(f"{s['name']} ({len(s['tokens'])} tokens, {len(s['jwks']['keys'])} keys)" for s in sets))
