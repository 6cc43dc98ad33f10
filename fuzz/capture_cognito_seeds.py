# Captures real answers of cognito-local (interop/cognito-local; `npm ci` there first) to Cognito calls
# and writes them as seeds of the cognito_response fuzz target: [selector, content type, body...].
# Run from the repository root: python3 fuzz/capture_cognito_seeds.py
import json, os, re, subprocess, tempfile, time, urllib.error, urllib.request

root = os.getcwd()
seeds = os.path.join(root, "fuzz", "seeds", "cognito_response")
STATUSES = [200, 204, 400, 401, 429, 500, 503]
TYPES = ["application/x-amz-json-1.1", "application/json", "text/html", "text/plain", ""]


def call(base, operation, body):
    request = urllib.request.Request(base + "/", data=json.dumps(body).encode(), headers={
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "AWSCognitoIdentityProviderService." + operation,
    })
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("content-type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), error.read()


def write(name, status, content_type, body, call_index=0):
    selector = STATUSES.index(status) if status in STATUSES else 2
    selector += call_index * len(STATUSES)
    type_index = next((i for i, t in enumerate(TYPES) if t and content_type.startswith(t)), 0)
    os.makedirs(seeds, exist_ok=True)
    with open(os.path.join(seeds, name), "wb") as f:
        f.write(bytes([selector, type_index]) + body)


workdir = tempfile.mkdtemp()
server = subprocess.Popen(["node", os.path.join(root, "interop/cognito-local/start.cjs")], cwd=workdir,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    base = None
    deadline = time.time() + 30
    while base is None and time.time() < deadline:
        line = server.stdout.readline()
        found = re.search(r"running on (http://[0-9.:]+)", line)
        base = found.group(1) if found else None
    assert base, "cognito-local did not start"
    _, _, pool = call(base, "CreateUserPool", {"PoolName": "seeds"})
    pool_id = json.loads(pool)["UserPool"]["Id"]
    _, _, client = call(base, "CreateUserPoolClient", {"UserPoolId": pool_id, "ClientName": "seeds"})
    client_id = json.loads(client)["UserPoolClient"]["ClientId"]
    call(base, "AdminCreateUser", {"UserPoolId": pool_id, "Username": "alice", "TemporaryPassword": "Temp-pass1"})
    call(base, "AdminSetUserPassword", {"UserPoolId": pool_id, "Username": "alice", "Password": "Alice-pass1", "Permanent": True})
    login = {"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": client_id,
             "AuthParameters": {"USERNAME": "alice", "PASSWORD": "Alice-pass1"}}
    status, ctype, body = call(base, "InitiateAuth", login)
    write("cognito-local-login", status, ctype, body)
    refresh_token = json.loads(body)["AuthenticationResult"]["RefreshToken"]
    status, ctype, body = call(base, "InitiateAuth", {"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": client_id,
                                                      "AuthParameters": {"REFRESH_TOKEN": refresh_token}})
    write("cognito-local-refresh", status, ctype, body, call_index=1)
    wrong = dict(login, AuthParameters={"USERNAME": "alice", "PASSWORD": "wrong"})
    status, ctype, body = call(base, "InitiateAuth", wrong)
    write("cognito-local-wrong-password", status, ctype, body)
    status, ctype, body = call(base, "InitiateAuth", dict(login, AuthParameters={"USERNAME": "nobody", "PASSWORD": "x"}))
    write("cognito-local-unknown-user", status, ctype, body)
    status, ctype, body = call(base, "RevokeToken", {"Token": refresh_token, "ClientId": client_id})
    write("cognito-local-revoke", status, ctype, body, call_index=2)
    status, ctype, body = call(base, "InitiateAuth", {"AuthFlow": "REFRESH_TOKEN_AUTH", "ClientId": client_id,
                                                      "AuthParameters": {"REFRESH_TOKEN": refresh_token}})
    write("cognito-local-refresh-after-revoke", status, ctype, body, call_index=1)
    # A challenge as AWS sends it (cognito-local needs its data file edited to enable SMS MFA; the
    # shape below is AWS's documented one).
    challenge = {"ChallengeName": "SMS_MFA", "Session": "AYABeExampleSession",
                 "ChallengeParameters": {"CODE_DELIVERY_DELIVERY_MEDIUM": "SMS",
                                         "CODE_DELIVERY_DESTINATION": "+*******1234", "USER_ID_FOR_SRP": "alice"}}
    write("aws-sms-mfa-challenge", 200, TYPES[0], json.dumps(challenge).encode())
    print("wrote", len(os.listdir(seeds)), "seeds to", seeds)
finally:
    server.kill()
