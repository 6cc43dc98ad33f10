"""Bad input holding a marker secret, through the Python API: no exception's ``str``, ``repr``,
``args``, attributes or chained causes repeat any piece of it (issue 14's secret-echo scan; the
library's is crates/tessera/tests/hostile_files.rs, the CLI's crates/tessera-cli/tests/hostile_files.rs).

The inputs: every provider field (read from the configuration reference, which a Rust test keeps
equal to ``provider_spec::FIELDS``) given values of the wrong type holding the marker, through
``AuthClient.from_toml`` and ``JsonEngine.register``; TOML syntax errors on a line holding a literal
secret; malformed and unusable secret references; a custom type's unknown field; every argument of
the constructors (grants, ``ClientAuth``, ``Endpoints``, ``Client``, ``TokenSet``, stores); token
files and Python stores of the wrong shape; hostile configuration and token files (a FIFO,
``/dev/zero``, 200 MB, writable by others, owned by another user), which must also be refused
naming the file, without hanging."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote

import pytest

import tessera
from tessera.native import JsonEngine

MARKER = "S3CR3T-marker/value+x"
ROOT = Path(__file__).resolve().parents[2]
# A loopback port nothing listens on: nothing here is meant to reach a server.
CLOSED = "http://127.0.0.1:9"


def _forms() -> List[str]:
    """The marker's 6-character pieces, and its base64 at each alignment (the stable middle)."""
    forms = [MARKER[i : i + 6] for i in range(len(MARKER) - 5)]
    for prefix in ("", "x", "xx"):
        raw = (prefix + MARKER).encode()
        for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            text = encoded.decode().rstrip("=")
            forms.append(text[(4 if prefix else 0) : len(text) - 4])
    return forms


FORMS = _forms()


def _texts(error: BaseException, depth: int = 0) -> Iterator[str]:
    """Everything an exception shows: str, repr, args, attributes, and its causes'."""
    yield str(error)
    yield repr(error)
    for arg in error.args:
        yield repr(arg)
    for value in vars(error).values():
        yield repr(value)
    for cause in (error.__cause__, error.__context__):
        if cause is not None and depth < 5:
            yield from _texts(cause, depth + 1)


class Scan:
    """Collects every exception raised by a bad input; reports those that repeat the marker."""

    def __init__(self) -> None:
        self.errors = 0
        self.accepted: List[str] = []
        self.leaks: List[str] = []

    def check(self, what: str, error: BaseException) -> None:
        self.errors += 1
        for text in _texts(error):
            found = next((form for form in FORMS if form in text), None)
            if found is not None:
                self.leaks.append(f"{what}: {found!r} in {type(error).__name__}: {text}")
                return

    def call(self, what: str, action: Callable[[], Any]) -> Optional[BaseException]:
        """Runs ``action``; an exception is scanned and returned, success is noted."""
        try:
            action()
        except Exception as error:  # noqa: BLE001 - every exception type is scanned
            self.check(what, error)
            return error
        self.accepted.append(what)
        return None

    def finish(self, at_least: int) -> None:
        assert self.errors >= at_least, f"only {self.errors} errors scanned; accepted: {self.accepted}"
        assert not self.leaks, f"{len(self.leaks)} leaks:\n" + "\n".join(self.leaks)


# ---------------------------------------------------------------------------------------------
# Provider descriptions: TOML and JSON.

KINDS = [
    "password",
    "client_credentials",
    "refresh_token",
    "static",
    "device_code",
    "email_otp",
    "cognito",
    "browser",
    "jwt_bearer",
    "workload_identity",
]
ROOT_DIR = Path(__file__).resolve().parents[2]
# The reference IdP's demo service account key (a public test fixture).
DEMO_KEY = (ROOT_DIR / "testdata" / "service-account" / "demo-private-key.pem").read_text()


def _fields() -> List[Tuple[str, List[str], str]]:
    """(name, provider types, type) of every field, from the generated reference table."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    table = text.split("<!-- BEGIN provider fields")[1].split("<!-- END provider fields")[0]
    fields = []
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        name, applies, kind = cells[0].strip("`"), cells[1], cells[2]
        if applies == "all":
            kinds = KINDS
        elif applies.startswith("all but"):
            kinds = [k for k in KINDS if f"`{k}`" not in applies]
        else:
            kinds = re.findall(r"`([a-z_]+)`", applies)
        fields.append((name, kinds, kind))
    return fields


def _base(kind: str) -> Dict[str, Any]:
    """A valid provider of each type (nothing is sent: every URL is a closed loopback port)."""
    section: Dict[str, Any] = {"type": kind, "client_id": "c"}
    token = {"token_endpoint": f"{CLOSED}/token"}
    section.update(
        {
            "password": {**token, "username": "u", "password": "p"},
            "client_credentials": {**token, "client_secret": "s"},
            "refresh_token": {**token, "refresh_token": "r"},
            "static": {"access_token": "t"},
            "device_code": {**token, "device_authorization_endpoint": f"{CLOSED}/device"},
            "email_otp": {
                **token,
                "otp_start_endpoint": f"{CLOSED}/s",
                "otp_verify_endpoint": f"{CLOSED}/v",
                "email": "a@example.com",
            },
            "cognito": {"endpoint_url": f"{CLOSED}/", "username": "u", "password": "p"},
            "browser": {**token, "authorization_endpoint": f"{CLOSED}/authorize"},
            "jwt_bearer": {**token, "assertion_key": DEMO_KEY},
            "workload_identity": {**token, "subject_token": "env:TESSERA_TEST_NEVER_SET"},
        }[kind]
    )
    if kind == "static":
        del section["client_id"]
    return section


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(value)


def _toml(section: Dict[str, Any]) -> str:
    lines = "".join(f"{json.dumps(k)} = {_toml_value(v)}\n" for k, v in section.items())
    return f'[[contexts]]\nname = "dev"\n\n[[contexts.auth_providers]]\nname = "peer"\n{lines}'


def _marker_values(kind: str) -> List[Any]:
    if kind in ("integer ≥ 1", "port", "seconds", "Unix seconds"):
        return [MARKER, [MARKER]]
    if kind == "table of strings":
        return [MARKER, [MARKER], {MARKER: [MARKER]}, {MARKER: ""}]
    return [[MARKER], {MARKER: MARKER}, MARKER]


def test_the_reference_table_lists_every_field() -> None:
    names = [name for name, _, _ in _fields()]
    assert len(names) >= 29 and names[0] == "type" and "authorization_params" in names, names
    for kind in KINDS:  # and every base provider is valid: the scan reaches the field under test
        tessera.SyncAuthClient.from_toml(_toml(_base(kind)), store=tessera.MemoryStore())
        JsonEngine().register("k", json.dumps(_base(kind)))


def test_no_error_repeats_a_marker_given_in_any_provider_field() -> None:
    scan = Scan()
    for name, kinds, kind_of_value in _fields():
        for kind in kinds:
            for value in _marker_values(kind_of_value):
                section = _base(kind)
                if name == "issuer":
                    section.pop("token_endpoint", None)
                section[name] = value
                what = f"{name} = {value!r} ({kind})"
                text = _toml(section)
                scan.call(f"{what}: from_toml", lambda: tessera.SyncAuthClient.from_toml(text, store=tessera.MemoryStore()))
                scan.call(f"{what}: register", lambda: JsonEngine().register("k", json.dumps(section)))
    scan.finish(at_least=250)


def test_no_error_repeats_a_secret_from_a_bad_configuration(tmp_path: Path) -> None:
    good = _toml(_base("client_credentials"))
    texts = {
        "a literal secret then junk": good.replace('"s"', f'"{MARKER}" trailing'),
        "an unterminated literal secret": good.replace('"s"', f'"{MARKER}'),
        "a secret on a line of its own": f"{good}{MARKER}\n",
        "a duplicate key": f'{good}"client_secret" = "{MARKER}"\n',
        "a bad escape": good.replace('"s"', f'"{MARKER}\\q"'),
        "a secret as a key": f'{good}"{MARKER}" = 1\n',
        "a secret as a top-level key": f'"{MARKER}" = 1\n{good}',
        "current_context of the wrong type": f'current_context = ["{MARKER}"]\n{good}',
        "an unknown store kind": good.replace('name = "dev"\n', f'name = "dev"\nstore = {{ kind = "{MARKER}" }}\n'),
    }
    no_slash = MARKER.replace("/", "")
    for reference in (f"env:{MARKER}", f"env: {MARKER}", f"keyring:{no_slash}", f"keyring:/{no_slash}", f"keyring:{no_slash}/"):
        texts[f"client_secret = {reference!r}"] = good.replace('"s"', json.dumps(reference))
    scan = Scan()
    for what, text in texts.items():
        for build in (tessera.SyncAuthClient.from_toml, tessera.AuthClient.from_toml):
            scan.call(what, lambda: build(text, store=tessera.MemoryStore()))

    # A store URL with a password (the marker), refused when the store is first used.
    redis = good.replace(
        'name = "dev"\n', f'name = "dev"\nstore = {{ kind = "redis", url = "redis://u:{quote(MARKER, safe="")}@127.0.0.1:9/" }}\n'
    )
    error = scan.call("a store URL with a password", lambda: tessera.SyncAuthClient.from_toml(redis).login("peer"))
    assert isinstance(error, tessera.StoreError), error

    # `file:` secrets that hold the marker but cannot be used: refused when the login needs them.
    def secret_file(name: str, data: bytes, mode: int) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        path.chmod(mode)
        return f"file:{path}"

    for what, reference in {
        "writable by others": secret_file("loose", MARKER.encode(), 0o666),
        "not UTF-8": secret_file("binary", MARKER.encode() + b"\xff\xfe", 0o600),
        "over 64 KiB": secret_file("big", MARKER.encode() * 4000, 0o600),
        "a directory": f"file:{tmp_path}",
    }.items():
        client = tessera.SyncAuthClient.from_toml(good.replace('"s"', json.dumps(reference)), store=tessera.MemoryStore())
        error = scan.call(f"a file: secret {what}", lambda: client.login("peer"))
        assert isinstance(error, tessera.TesseraError), (what, error)

    # A registered type's unknown field (checked by `allow_fields`).
    registry = tessera.Registry()

    def factory(settings: tessera.ProviderSettings) -> Any:
        settings.allow_fields(["key"])
        raise AssertionError("allow_fields let an unknown field through")

    registry.register_factory("custom", factory)
    for key in (MARKER, f"{MARKER}x"):
        text = f'[[contexts]]\nname = "dev"\n\n[[contexts.auth_providers]]\nname = "peer"\ntype = "custom"\n"{key}" = "v"\n'
        error = scan.call("a custom type's unknown field", lambda: tessera.SyncAuthClient.from_toml(text, registry=registry))
        assert isinstance(error, tessera.ConfigurationError), error
    scan.finish(at_least=len(texts) * 2 + 7)


# ---------------------------------------------------------------------------------------------
# Constructors.


_WRITTEN: List[str] = []


def _written(text: str) -> str:
    """A private temporary file holding `text`: its path (removed at the end of the test)."""
    handle, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(handle, "w") as file:
        file.write(text)
    _WRITTEN.append(path)
    return path


def test_no_constructor_error_repeats_a_marker_argument() -> None:
    calls: Dict[str, Callable[[Any], Any]] = {
        "Password(username)": lambda v: tessera.Password(v, "pw"),
        "Password(password)": lambda v: tessera.Password("alice", v),
        "Password(totp)": lambda v: tessera.Password("alice", "pw", totp=v),
        "Password(totp_secret)": lambda v: tessera.Password("alice", "pw", totp_secret=v),
        "RefreshToken": lambda v: tessera.RefreshToken(v),
        "StaticToken": lambda v: tessera.StaticToken(v),
        "StaticToken(expires_at)": lambda v: tessera.StaticToken("t", expires_at=v),
        "DeviceCode": lambda v: tessera.DeviceCode(v),
        "Browser(authorization_endpoint)": lambda v: tessera.Browser(v),
        "Browser(redirect_uri)": lambda v: tessera.Browser(redirect_uri=v),
        "Browser(authorization_params key)": lambda v: tessera.Browser(authorization_params={v: "x"}),
        "Browser(authorization_params)": lambda v: tessera.Browser(authorization_params=v),
        "Browser(redirect_port)": lambda v: tessera.Browser(redirect_port=v),
        "Browser(redirect_path)": lambda v: tessera.Browser(redirect_path=v),
        "Browser(login_timeout)": lambda v: tessera.Browser(login_timeout=v),
        "EmailOtp(email)": lambda v: tessera.EmailOtp(v),
        "EmailOtp(otp_start_endpoint)": lambda v: tessera.EmailOtp("e@x", v, f"{CLOSED}/v"),
        "EmailOtp(max_code_attempts)": lambda v: tessera.EmailOtp("e@x", max_code_attempts=v),
        "Cognito(endpoint_url)": lambda v: tessera.Cognito(v, "u", "p"),
        "Cognito(username)": lambda v: tessera.Cognito(CLOSED, v, "p"),
        "Cognito(password)": lambda v: tessera.Cognito(CLOSED, "u", v),
        "Cognito(auth_flow)": lambda v: tessera.Cognito(CLOSED, "u", "p", auth_flow=v),
        "Cognito(totp_secret)": lambda v: tessera.Cognito(CLOSED, "u", "p", totp_secret=v),
        "JwtBearer(assertion_key)": lambda v: tessera.JwtBearer(v),
        "JwtBearer(service_account_key)": lambda v: tessera.JwtBearer(service_account_key=v),
        # A file reference names its path (not a secret): here the file's contents are the marker.
        "JwtBearer(service_account_key file)": lambda v: tessera.JwtBearer(
            service_account_key="file:" + _written(str(v))
        ),
        "JwtBearer(service_account_key JSON)": lambda v: tessera.JwtBearer(
            service_account_key=json.dumps({"type": "service_account", "client_email": "a@b", "private_key": v})
        ),
        "JwtBearer(assertion_alg)": lambda v: tessera.JwtBearer(DEMO_KEY, assertion_alg=v),
        "JwtBearer(assertion_kid)": lambda v: tessera.JwtBearer(DEMO_KEY, assertion_kid=v),
        "JwtBearer(subject)": lambda v: tessera.JwtBearer(DEMO_KEY, subject=v),
        "JwtBearer(audience)": lambda v: tessera.JwtBearer(DEMO_KEY, audience=v),
        "JwtBearer(assertion_lifetime)": lambda v: tessera.JwtBearer(DEMO_KEY, assertion_lifetime=v),
        "JwtBearer(scope_in_assertion)": lambda v: tessera.JwtBearer(DEMO_KEY, scope_in_assertion=v),
        "ApiKeyGrant(key)": lambda v: tessera.ApiKeyGrant(v),
        "ApiKeyGrant(env)": lambda v: tessera.ApiKeyGrant(env=v),
        "ApiKeyGrant(prefix)": lambda v: tessera.ApiKeyGrant(prefix=v),
        "ClientAuth(client_id)": lambda v: tessera.ClientAuth(v),
        "ClientAuth(client_secret)": lambda v: tessera.ClientAuth("c", v),
        "ClientAuth(method)": lambda v: tessera.ClientAuth("c", "s", method=v),
        "ClientAuth(dpop_key)": lambda v: tessera.ClientAuth("c", dpop=True, dpop_key=v),
        "ClientAuth(dpop_key without dpop)": lambda v: tessera.ClientAuth("c", dpop_key=v),
        "ClientAuth(dpop_alg)": lambda v: tessera.ClientAuth("c", dpop=True, dpop_alg=v),
        "Endpoints.discover": lambda v: tessera.Endpoints.discover(v),
        "Endpoints.explicit(token_endpoint)": lambda v: tessera.Endpoints.explicit(v),
        "Endpoints.explicit(revocation_endpoint)": lambda v: tessera.Endpoints.explicit(f"{CLOSED}/t", v),
        "TokenSet(access_token)": lambda v: tessera.TokenSet(v),
        "TokenSet(token_type)": lambda v: tessera.TokenSet("t", token_type=v),
        "TokenSet(expires_at)": lambda v: tessera.TokenSet("t", expires_at=v),
        "TokenSet(expires_in)": lambda v: tessera.TokenSet("t", expires_in=v),
        "TokenSet(refresh_token)": lambda v: tessera.TokenSet("t", refresh_token=v),
        "TokenSet(id_token)": lambda v: tessera.TokenSet("t", id_token=v),
        "TokenSet.from_json": lambda v: tessera.TokenSet.from_json(v),
        "FileStore": lambda v: tessera.FileStore(v),
        "RedisStore(url)": lambda v: tessera.RedisStore(v),
        "RedisStore(password)": lambda v: tessera.RedisStore(f"redis://u:{quote(str(v), safe='')}@127.0.0.1:9/"),
        "RedisStore(prefix)": lambda v: tessera.RedisStore("redis://127.0.0.1:9/", prefix=v),
        "open_store(kind)": lambda v: tessera.open_store({"kind": v}),
        "open_store(url)": lambda v: tessera.open_store({"kind": "redis", "url": v}),
        "open_store(field)": lambda v: tessera.open_store({"kind": "memory", v: v}),
        "Client(issuer)": lambda v: tessera.SyncClient(v, client_id="c", grant=tessera.ClientCredentials()),
        "Client(client_id)": lambda v: tessera.SyncClient(CLOSED, client_id=v),
        "Client(client_secret)": lambda v: tessera.SyncClient(CLOSED, client_id="c", client_secret=v),
        "Client(token_endpoint)": lambda v: tessera.SyncClient(client_id="c", token_endpoint=v),
        "Client(revocation_endpoint)": lambda v: tessera.SyncClient(
            client_id="c", token_endpoint=f"{CLOSED}/t", revocation_endpoint=v
        ),
        "Client(client_auth)": lambda v: tessera.SyncClient(CLOSED, client_id="c", client_auth=v),
        "Client(dpop_key)": lambda v: tessera.SyncClient(
            CLOSED, client_id="c", grant=tessera.Password("a", "p"), dpop=True, dpop_key=v
        ).tokens(),
        "Client(dpop_alg)": lambda v: tessera.SyncClient(
            CLOSED, client_id="c", grant=tessera.Password("a", "p"), dpop=True, dpop_alg=v
        ).tokens(),
        "Client(scope)": lambda v: tessera.SyncClient(CLOSED, client_id="c", scope=v),
        "Client(grant)": lambda v: tessera.SyncClient(CLOSED, client_id="c", grant=v),
        "Client(store)": lambda v: tessera.SyncClient(CLOSED, client_id="c", store=v),
    }
    scan = Scan()
    values: List[Any] = [MARKER, [MARKER], {MARKER: MARKER}, MARKER.encode(), (MARKER, MARKER)]
    for what, call in calls.items():
        for value in values:
            built = []
            scan.call(f"{what} with {value!r}", lambda: built.append(call(value)))
            # A grant that was built is checked again inside a client (the rules on a whole provider).
            if built and isinstance(built[0], tessera.Grant):
                grant = built[0]
                scan.call(
                    f"{what} with {value!r} in a Client",
                    lambda: tessera.SyncClient(CLOSED, client_id="c", client_secret="s", grant=grant),
                )
    for path in _WRITTEN:
        os.unlink(path)
    scan.finish(at_least=len(calls) * 3)


# ---------------------------------------------------------------------------------------------
# Token files and Python stores.

NOW_MS = int(time.time() * 1000)
BAD_DOCUMENTS = [
    f'{{"version":1,"tokens":{{"dev/peer":"eyJ{MARKER}"}}}}',
    f'{{"version":1,"tokens":{{"dev/peer":{{"access_token":["{MARKER}"]}}}}}}',
    f'{{"version":1,"tokens":{{"dev/peer":{{"access_token":"x","expires_at":"{MARKER}"}}}}}}',
    f'{{"version":"{MARKER}"}}',
    f'{{"version":1,"tokens":{{"dev/peer":{{"access_token":"{MARKER}" {MARKER}',
    f'{{"version":1,"tokens":{{"dev/peer":{{"access_token":"{MARKER}"',
    f'{{"version":99,"tokens":{{"dev/peer":{{"access_token":"{MARKER}","issued_at":{NOW_MS}}}}}}}',
    f"{MARKER}\n",
]


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    return path


def test_no_store_error_repeats_a_stored_token(tmp_path: Path) -> None:
    scan = Scan()
    store = tessera.FileStore(_private_dir(tmp_path / "store"))
    tokens = tmp_path / "store" / "tokens.json"
    for n, document in enumerate(BAD_DOCUMENTS):
        for data in (document.encode(), document.encode() + b"\xff"):
            tokens.write_bytes(data)
            tokens.chmod(0o600)
            error = scan.call(f"document {n}: FileStore.load", lambda: store.load("dev/peer"))
            assert isinstance(error, tessera.StoreError), (n, error)
            scan.call(f"document {n}: FileStore.save", lambda: store.save("dev/peer", tessera.TokenSet("t")))
            assert tokens.read_bytes() == data, "a file it cannot read is left as it was"
        inner = document.split('"dev/peer":', 1)[-1].rstrip("}") if '"dev/peer":' in document else document
        scan.call(f"document {n}: TokenSet.from_json", lambda: tessera.TokenSet.from_json(inner))
        engine = JsonEngine().register("k", json.dumps(_base("client_credentials")))
        scan.call(f"document {n}: JsonEngine.set_tokens", lambda: engine.set_tokens("k", inner))

    # Python stores returning values of the wrong shape holding the marker.
    for returned in ({"access_token": [MARKER]}, {"access_token": "x", "expires_at": MARKER}, f"eyJ{MARKER}", [MARKER]):

        class Garbage:
            def load(self, key: str) -> Any:
                return returned

            def save(self, key: str, tokens: tessera.TokenSet) -> None:
                pass

        client = tessera.SyncClient(CLOSED, client_id="c", client_secret="s", grant=tessera.ClientCredentials(), store=Garbage())
        error = scan.call(f"a Python store returning {returned!r}", client.authorization_header)
        assert error is not None
    scan.finish(at_least=len(BAD_DOCUMENTS) * 3 + 4)


# ---------------------------------------------------------------------------------------------
# Hostile files: refused naming the file, without hanging, repeating nothing.

HOSTILE = ["dev_zero", "fifo", "huge", "world_writable"] + (["other_owner"] if os.geteuid() == 0 else [])


def _place(kind: str, path: Path, content: str) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    if kind == "dev_zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "huge":
        with open(path, "wb") as f:
            f.truncate(200 << 20)
        path.chmod(0o600)
    else:
        path.write_text(content)
        path.chmod(0o666 if kind == "world_writable" else 0o600)
        if kind == "other_owner":
            os.chown(path, 65534, -1)


def _problem(kind: str, cap: int, tokens: bool = False) -> str:
    return {
        "dev_zero": "is not a regular file",
        "fifo": "is not a regular file",
        "huge": f"is 209715200 bytes, more than the {cap} bytes",
        "world_writable": "is accessible by other users (mode 0666)" if tokens else "is writable by group or others (mode 0666)",
        "other_owner": "is owned by uid 65534, not by you",
    }[kind]


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_configuration_file_is_refused_naming_it(kind: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    text = _toml({**_base("client_credentials"), "client_secret": MARKER})
    config.write_text(text)
    tessera.SyncAuthClient.from_file(config, store=tessera.MemoryStore())  # control: as a plain file it loads
    _place(kind, config, text)
    scan = Scan()
    started = time.monotonic()
    for build in (tessera.SyncAuthClient.from_file, tessera.AuthClient.from_file):
        error = scan.call(kind, lambda: build(config, store=tessera.MemoryStore()))
        assert isinstance(error, tessera.ConfigurationError), error
        assert str(config) in str(error) and _problem(kind, 1 << 20) in str(error), str(error)
    assert time.monotonic() - started < 10, "refused without reading"
    scan.finish(at_least=2)


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_token_file_is_refused_naming_it(kind: str, tmp_path: Path) -> None:
    store = tessera.FileStore(_private_dir(tmp_path / "store"))
    tokens = tmp_path / "store" / "tokens.json"
    content = json.dumps(
        {"version": 1, "tokens": {"dev/peer": {"access_token": MARKER, "expires_at": NOW_MS + 3_600_000, "issued_at": NOW_MS}}}
    )
    tokens.write_text(content)
    tokens.chmod(0o600)
    loaded = store.load("dev/peer")  # control: as a private regular file it is a good store
    assert loaded is not None and loaded.access_token == MARKER
    _place(kind, tokens, content)
    scan = Scan()
    started = time.monotonic()
    for action in (lambda: store.load("dev/peer"), lambda: store.save("dev/peer", tessera.TokenSet("t"))):
        error = scan.call(kind, action)
        assert isinstance(error, tessera.StoreError), error
        assert str(tokens) in str(error) and _problem(kind, 16 << 20, tokens=True) in str(error), str(error)
    assert time.monotonic() - started < 10, "refused without reading"
    scan.finish(at_least=2)
