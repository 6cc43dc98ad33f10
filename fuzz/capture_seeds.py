# Captures real responses (run: python3 fuzz/capture_seeds.py from the repository root, after
# `cargo build -p tessera-cli` and `npm ci` in interop/oidc-provider) from oidc-provider (interop/) and the reference IdP, and writes them as
# seed inputs in each fuzz target's input format. Run from the repository root.
import urllib.parse
import base64, json, os, subprocess, sys, time, urllib.request, urllib.error

root = os.getcwd()
seeds = os.path.join(root, "fuzz", "seeds")

def req(url, form=None, auth=None, headers=None):
    data = None if form is None else urllib.parse.urlencode(form).encode()
    r = urllib.request.Request(url, data=data, headers=headers or {})
    if auth:
        r.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.headers.get("content-type", ""), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("content-type", ""), e.read()

STATUSES = [200, 201, 204, 400, 401, 429, 500, 503]
TYPES = ["application/json", "application/json; charset=utf-8", "application/problem+json", "text/html", "text/plain", ""]

def write(target, name, data):
    d = os.path.join(seeds, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def token_seed(name, status, ctype, body):
    sel = STATUSES.index(status) if status in STATUSES else 3
    ct = 1 if ctype.startswith("application/json;") else (0 if ctype.startswith("application/json") else 3)
    write("token_response", name, bytes([sel, ct]) + body)
    # the same body as an engine event for json_engine
    event = {"type": "http_response", "request_id": 1, "status": status, "headers": {"content-type": ctype}, "body": body.decode("utf-8", "replace")}
    provider = {"client_id": "c", "client_secret": "s", "token_url": "https://idp.example/token", "grant": {"type": "client_credentials"}}
    write("json_engine", name, json.dumps(provider).encode() + b"\0" + json.dumps(event).encode())
    write("engine", name, bytes([0, 0, 0, 0]) + body[:20])

def capture(prefix, issuer, client, user, password, totp_code=None):
    s, ct, body = req(issuer + "/.well-known/openid-configuration")
    write("discovery", prefix + "-discovery", b"\0" + body)
    meta = json.loads(body)
    tok = meta["token_endpoint"]
    s, ct, body = req(tok, {"grant_type": "client_credentials", "scope": "openid"}, auth=client)
    token_seed(prefix + "-client-credentials", s, ct, body)
    form = {"grant_type": "password", "username": user, "password": password, "scope": "openid offline_access"}
    if totp_code: form["totp"] = totp_code
    s, ct, body = req(tok, form, auth=client)
    token_seed(prefix + "-password", s, ct, body)
    rt = json.loads(body).get("refresh_token") if s == 200 else None
    if rt:
        s, ct, body = req(tok, {"grant_type": "refresh_token", "refresh_token": rt}, auth=client)
        token_seed(prefix + "-refresh", s, ct, body)
        s, ct, body = req(tok, {"grant_type": "refresh_token", "refresh_token": rt}, auth=client)
        token_seed(prefix + "-refresh-reuse", s, ct, body)
    s, ct, body = req(tok, {"grant_type": "password", "username": user, "password": "wrong"}, auth=client)
    token_seed(prefix + "-invalid-grant", s, ct, body)
    s, ct, body = req(tok, {"grant_type": "client_credentials"}, auth=(client[0], "wrong"))
    token_seed(prefix + "-invalid-client", s, ct, body)
    s, ct, body = req(tok, {"grant_type": "nope"}, auth=client)
    token_seed(prefix + "-unsupported-grant", s, ct, body)
    if meta.get("device_authorization_endpoint"):
        s, ct, body = req(meta["device_authorization_endpoint"], {"scope": "openid", "client_id": "device-client"})
        write("device_authorization", prefix + "-device", bytes([0 if s == 200 else 1]) + body)
    if meta.get("revocation_endpoint"):
        s, ct, body = req(meta["revocation_endpoint"], {"token": "x"}, auth=client)
        token_seed(prefix + "-revoke", s, ct, body or b"")

def start(cmd, env=None, cwd=None):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}, cwd=cwd)
    line = p.stdout.readline().decode().strip()
    return p, line

# oidc-provider
p, line = start(["node", "server.mjs"], cwd=os.path.join(root, "interop", "oidc-provider"))
try:
    issuer = json.loads(line)["issuer"]
    capture("oidc-provider", issuer, ("confidential-client", "confidential-secret"), "alice", "alice-password")
finally:
    p.terminate(); p.wait(timeout=10)

# reference IdP
p, line = start([os.path.join(root, "target", "debug", "tessera"), "idp", "serve"])
try:
    issuer = line.split()[-1] if line else ""
    issuer = issuer if issuer.startswith("http") else line
    capture("tessera-idp", issuer.rstrip("/"), ("confidential-client", "confidential-secret"), "alice", "alice-password")
finally:
    p.terminate(); p.wait(timeout=10)
print("ok")
