# Captures the reference IdP's real chain answers (network login, discovery token, domain access, RFC
# 8693 exchange) and writes chain_state fuzz seeds: an exported state document built from them, and
# the exchange answers. Run from the repository root after `cargo build -p tessera-cli`:
#     python3 fuzz/capture_chain_seeds.py
import base64, json, os, re, subprocess, time, urllib.error, urllib.parse, urllib.request

root = os.getcwd()
seeds = os.path.join(root, "fuzz", "seeds", "chain_state")
binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target")), "debug", "tessera")
BASIC = "Basic " + base64.b64encode(b"confidential-client:confidential-secret").decode()


def request(url, form=None, headers=None, method=None):
    data = None if form is None else urllib.parse.urlencode(form).encode()
    r = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(r, timeout=10) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read()


def write(name, data):
    os.makedirs(seeds, exist_ok=True)
    with open(os.path.join(seeds, name), "wb") as f:
        f.write(data)


def token_set(answer, now_ms):
    tokens = {"access_token": answer["access_token"], "token_type": answer.get("token_type", "Bearer"),
              "expires_at": now_ms + 1000 * answer["expires_in"] if "expires_in" in answer else None,
              "issued_at": now_ms}
    if answer.get("refresh_token"):
        tokens["refresh_token"] = answer["refresh_token"]
    return tokens


server = subprocess.Popen([binary, "idp", "serve", "--port", "0", "--test-endpoints"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
try:
    issuer = None
    deadline = time.time() + 30
    while issuer is None and time.time() < deadline:
        found = re.search(r"(http://127\.0\.0\.1:\d+)", server.stdout.readline())
        issuer = found.group(1) if found else None
    assert issuer, "the reference IdP did not start"
    now_ms = int(time.time() * 1000)
    _, _, body = request(issuer + "/token", {"grant_type": "password", "username": "alice",
                                             "password": "alice-password", "scope": "openid api:read"},
                         {"authorization": BASIC})
    network = json.loads(body)
    bearer = {"authorization": "Bearer " + network["access_token"]}
    _, _, body = request(issuer + "/chain/discovery", form={}, headers=bearer)
    discovery = json.loads(body)
    domains = {}
    for domain in ["alpha", "beta"]:
        status, _, body = request(issuer + f"/chain/domains/{domain}/access", form={},
                                  headers={"authorization": "Bearer " + discovery["access_token"]})
        assert status == 200, body
        answer = json.loads(body)
        domains[domain] = {"id": answer["id"], "name": answer["name"], "domain_server": answer["domain_server"],
                           "access_token": answer["access_token"], "token_type": answer.get("token_type", "Bearer"),
                           "expires_at": now_ms + 1000 * answer["expires_in"], "issued_at": now_ms}
    state = {"version": 1, "network": token_set(network, now_ms), "discovery": token_set(discovery, now_ms),
             "domains": domains}
    write("state-reference-idp", b"\0" + json.dumps(state).encode())
    write("state-empty", b"\0" + json.dumps({"version": 1, "network": None, "discovery": None, "domains": {}}).encode())
    write("state-future-version", b"\0" + json.dumps(dict(state, version=2)).encode())
    exchange = {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": network["access_token"],
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token", "audience": "alpha"}
    status, ctype, body = request(issuer + "/token", exchange, {"authorization": BASIC})
    write("exchange-reference-idp", bytes([1, 0]) + body)
    status, ctype, body = request(issuer + "/token", dict(exchange, subject_token="not-a-token"), {"authorization": BASIC})
    write("exchange-refused", bytes([3, 0]) + body)
    print("wrote", len(os.listdir(seeds)), "seeds to", seeds)
finally:
    server.kill()
