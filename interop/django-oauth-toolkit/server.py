"""django-oauth-toolkit hosted for tessera interop tests.

Protocol with the test harness (crates/tessera/tests/support/django_oauth_toolkit.rs), the same as
interop/oidc-provider/server.mjs:
  * listens on 127.0.0.1:$PORT (default 0 = ephemeral port);
  * prints exactly ONE line of JSON to stdout once ready:
      {"issuer":"http://127.0.0.1:N/o","port":N,"token_endpoint":...,"revocation_endpoint":...,
       "introspection_endpoint":...,"stats":...}
    and nothing else ever goes to stdout (all logging goes to stderr);
  * exits on SIGTERM / SIGINT, and when stdin is a pipe or socket and it closes (so a crashed
    parent does not leave the server running).

Everything lives in a SQLite database in a fresh temporary directory (tables created at start,
deleted at exit) or in $DATA_DIR. See README.md in this folder for the settings, clients, accounts and the /_stats endpoint.
"""

import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import socketserver
import stat
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from io import BytesIO
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

# Keep stdout for the ready line only: everything Python or Django prints goes to stderr.
READY_OUT = os.fdopen(os.dup(sys.stdout.fileno()), "w")
sys.stdout = sys.stderr


def log(message):
    sys.stderr.write(f"[dot-interop] {message}\n")
    sys.stderr.flush()


def int_from_env(name, default, minimum=0):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or int(raw) < minimum:
        log(f"invalid {name}={raw!r} (expected an integer >= {minimum})")
        sys.exit(2)
    return int(raw)


def flag_from_env(name, default):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    if raw not in ("0", "1"):
        log(f"invalid {name}={raw!r} (expected 0 or 1)")
        sys.exit(2)
    return raw == "1"


PORT = int_from_env("PORT", 0)
ACCESS_TTL = int_from_env("ACCESS_TTL", 60, minimum=1)
# 0 = refresh tokens never age out (DOT's default, REFRESH_TOKEN_EXPIRE_SECONDS = None).
REFRESH_TTL = int_from_env("REFRESH_TTL", 86400)
GRACE_PERIOD = int_from_env("GRACE_PERIOD", 0)
ROTATE = flag_from_env("ROTATE_REFRESH_TOKEN", True)
REUSE_PROTECTION = flag_from_env("REUSE_PROTECTION", True)
# 1: build the schema by running every migration (~1 s); 0: create the tables straight from the
# models (~0.1 s; the same tables, indexes and constraints on an empty database).
MIGRATIONS = flag_from_env("MIGRATIONS", False)

# Bind first: the issuer (and so the settings) need the port.
listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", PORT))
port = listener.getsockname()[1]
origin = f"http://127.0.0.1:{port}"
issuer = f"{origin}/o"

# The database's folder: $DATA_DIR when given (the caller owns it: the Rust harness passes a temp
# directory it deletes itself, since a killed server cannot clean up), else a new temp directory
# deleted at exit.
own_data_dir = not os.environ.get("DATA_DIR")
data_dir = tempfile.mkdtemp(prefix="tessera-dot-") if own_data_dir else os.environ["DATA_DIR"]

# ---------------------------------------------------------------------------
# Django settings, configured in code (no project on disk).

import django  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from django.conf import settings  # noqa: E402

# OIDC needs a signing key even when no ID token is asked for (discovery publishes the JWKS).
signing_key = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)

settings.configure(
    DEBUG=False,
    SECRET_KEY=secrets.token_hex(32),
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "oauth2_provider"],
    MIDDLEWARE=[],
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(data_dir, "db.sqlite3"),
            # WAL: readers never wait for the writer; IMMEDIATE: a transaction takes the write lock
            # when it starts, so two concurrent token requests queue (up to 20 s) instead of failing
            # with "database is locked" when both try to upgrade a read lock.
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF",
            },
        }
    },
    # Test speed: Django's default PBKDF2 costs ~0.3 s per password and per hashed client secret.
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    LOGGING_CONFIG=None,
    MIGRATION_MODULES={} if MIGRATIONS else {"auth": None, "contenttypes": None, "oauth2_provider": None},
    OAUTH2_PROVIDER={
        "ACCESS_TOKEN_EXPIRE_SECONDS": ACCESS_TTL,
        "REFRESH_TOKEN_EXPIRE_SECONDS": REFRESH_TTL or None,
        "ROTATE_REFRESH_TOKEN": ROTATE,
        "REFRESH_TOKEN_REUSE_PROTECTION": REUSE_PROTECTION,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": GRACE_PERIOD,
        "SCOPES": {"read": "Reading scope", "write": "Writing scope", "introspection": "Introspect tokens"},
        "DEFAULT_SCOPES": ["read", "write"],
        "OIDC_ENABLED": True,
        "OIDC_RSA_PRIVATE_KEY": signing_key,
        "OIDC_ISS_ENDPOINT": issuer,
    },
)
# DOT warns on every use of the password grant (RFC 9700 discourages it), as a DeprecationWarning
# and a log record: once is enough. Nothing is logged below WARNING (oauthlib's debug records show
# request bodies, which hold passwords and tokens).
warnings.filterwarnings("ignore", category=DeprecationWarning)


class OnceFilter(logging.Filter):
    def __init__(self):
        super().__init__()
        self.seen = set()

    def filter(self, record):
        if record.name.startswith("oauth2_provider") and record.levelno == logging.WARNING:
            message = record.getMessage()
            if message in self.seen:
                return False
            self.seen.add(message)
        return True


log_handler = logging.StreamHandler(sys.stderr)
log_handler.setFormatter(logging.Formatter("[dot-interop] %(name)s %(levelname)s: %(message)s"))
log_handler.addFilter(OnceFilter())
logging.basicConfig(level=logging.WARNING, handlers=[log_handler])
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import include, path  # noqa: E402
from oauth2_provider.models import get_application_model, get_refresh_token_model  # noqa: E402

urlpatterns = [path("o/", include("oauth2_provider.urls", namespace="oauth2_provider"))]

started = time.monotonic()
call_command("migrate", verbosity=0, interactive=False, run_syncdb=not MIGRATIONS)

# ---------------------------------------------------------------------------
# Accounts and clients (also in README.md and as constants in
# crates/tessera/tests/support/django_oauth_toolkit.rs).

ACCOUNTS = {"alice": "alice-password", "bob": "bob-password"}
User = get_user_model()
for username, password in ACCOUNTS.items():
    User.objects.create_user(username=username, password=password)

Application = get_application_model()
CLIENTS = [
    # (client_id, secret, client type, grant type); confidential clients may authenticate with
    # client_secret_basic or client_secret_post (DOT accepts both for every confidential client).
    ("confidential-client", "confidential-secret", Application.CLIENT_CONFIDENTIAL, Application.GRANT_PASSWORD),
    ("post-client", "post-secret", Application.CLIENT_CONFIDENTIAL, Application.GRANT_PASSWORD),
    ("public-client", "", Application.CLIENT_PUBLIC, Application.GRANT_PASSWORD),
    ("machine-client", "machine-secret", Application.CLIENT_CONFIDENTIAL, Application.GRANT_CLIENT_CREDENTIALS),
]
for client_id, secret, client_type, grant_type in CLIENTS:
    Application.objects.create(
        name=client_id,
        client_id=client_id,
        client_secret=secret,
        client_type=client_type,
        authorization_grant_type=grant_type,
        redirect_uris="",
    )

# ---------------------------------------------------------------------------
# Statistics, served at GET /_stats and reset by POST /_stats/reset.

RefreshToken = get_refresh_token_model()
stats_lock = threading.Lock()


def fresh_stats():
    return {
        "token_requests": 0,
        "by_grant_type": {"password": 0, "refresh_token": 0, "client_credentials": 0, "authorization_code": 0},
        # Token requests answered with an error status (4xx/5xx), by grant type.
        "errors_by_grant_type": {},
        "revocations": 0,
        "introspections": 0,
        # A revoked refresh token was presented again (outside the grace period, or never used
        # to mint a successor): with reuse protection, DOT revokes its whole token family.
        "refresh_token_reuses": 0,
        # Reuse detections that revoked at least one live refresh token (the grant was alive).
        "grants_revoked": 0,
    }


stats = fresh_stats()

_revoke_family = RefreshToken.revoke_family.__func__


def _counted_revoke_family(cls, token_family):
    # Called only by validate_refresh_token, on reuse detection (DOT 3.4.1).
    live = cls.objects.filter(token_family=token_family, revoked__isnull=True).count() if token_family else 0
    _revoke_family(cls, token_family)
    with stats_lock:
        stats["refresh_token_reuses"] += 1
        if live:
            stats["grants_revoked"] += 1
    log(f"refresh token reuse detected: token family revoked ({live} live refresh token(s))")


RefreshToken.revoke_family = classmethod(_counted_revoke_family)


def refresh_token_state(raw):
    """'active', 'revoked' or 'unknown': what DOT's own validation would say of this refresh
    token now, grace period and age aside (looked up by checksum, as DOT does)."""
    checksum = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    rows = list(RefreshToken.objects.filter(token_checksum=checksum).select_related("access_token"))
    if not rows:
        return "unknown"
    if any(row.revoked is None and row.access_token is not None for row in rows):
        return "active"
    return "revoked"


def json_response(start_response, body, status="200 OK"):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                            ("Content-Length", str(len(data)))])
    return [data]


def form_of(environ):
    """Reads the request body and puts it back for Django; returns the parsed form."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = BytesIO(body)
    return urllib.parse.parse_qs(body.decode("latin-1"))


django_app = get_wsgi_application()
TOKEN_PATH = "/o/token/"


def application(environ, start_response):
    global stats
    path_info = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    if path_info == "/_stats" and method == "GET":
        with stats_lock:
            body = json.loads(json.dumps(stats))
        body["live_refresh_tokens"] = RefreshToken.objects.filter(revoked__isnull=True).count()
        return json_response(start_response, body)
    if path_info == "/_stats/reset" and method == "POST":
        with stats_lock:
            stats = fresh_stats()
            return json_response(start_response, stats)
    if path_info == "/_refresh_token" and method == "POST":
        token = form_of(environ).get("token", [""])[0]
        return json_response(start_response, {"state": refresh_token_state(token)})

    grant_type = None
    if path_info == TOKEN_PATH and method == "POST":
        grant_type = form_of(environ).get("grant_type", ["(none)"])[0]
    status_holder = {}

    def recording_start_response(status, headers, exc_info=None):
        status_holder["status"] = status
        return start_response(status, headers, exc_info)

    # Counted after DOT handled the request (Django builds the whole response before returning).
    result = django_app(environ, recording_start_response)
    if path_info in (TOKEN_PATH, "/o/revoke_token/", "/o/introspect/") and method == "POST":
        failed = not status_holder.get("status", "500").startswith("2")
        with stats_lock:
            if grant_type is not None:
                stats["token_requests"] += 1
                stats["by_grant_type"][grant_type] = stats["by_grant_type"].get(grant_type, 0) + 1
                if failed:
                    errors = stats["errors_by_grant_type"]
                    errors[grant_type] = errors.get(grant_type, 0) + 1
            elif path_info == "/o/revoke_token/":
                stats["revocations"] += 1
            else:
                stats["introspections"] += 1
        if grant_type is not None and failed:
            log(f"token error: grant_type={grant_type} {status_holder.get('status')}")
    return result


# ---------------------------------------------------------------------------
# Server: the standard library's WSGI server, one thread per connection.


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 128


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        # Request lines only (method, path, status): tokens travel in bodies and headers.
        sys.stderr.write(f"[dot-interop] {self.address_string()} {format % args}\n")


server = ThreadingWSGIServer(("127.0.0.1", port), QuietHandler, bind_and_activate=False)
server.socket.close()
server.socket = listener
server.server_bind = lambda: None
listener.listen(server.request_queue_size)
# WSGIServer.server_bind would have set these.
server.server_name, server.server_port = "127.0.0.1", port
server.setup_environ()
server.set_app(application)

shutting_down = threading.Event()


def shutdown(reason):
    if shutting_down.is_set():
        return
    shutting_down.set()
    log(f"shutting down ({reason})")
    threading.Thread(target=server.shutdown, daemon=True).start()


signal.signal(signal.SIGTERM, lambda *_: shutdown("SIGTERM"))
signal.signal(signal.SIGINT, lambda *_: shutdown("SIGINT"))

try:
    mode = os.fstat(0).st_mode
    stdin_is_pipe = stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)
except OSError:
    stdin_is_pipe = False
watch = os.environ.get("EXIT_ON_STDIN_CLOSE")
watch_stdin = watch == "1" if watch in ("0", "1") else stdin_is_pipe
if watch_stdin:

    def watch_stdin_until_closed():
        while os.read(0, 4096):
            pass
        shutdown("stdin closed")

    threading.Thread(target=watch_stdin_until_closed, daemon=True).start()

ready = {
    "issuer": issuer,
    "port": port,
    "token_endpoint": f"{issuer}/token/",
    "revocation_endpoint": f"{issuer}/revoke_token/",
    "introspection_endpoint": f"{issuer}/introspect/",
    "stats": f"{origin}/_stats",
}
READY_OUT.write(json.dumps(ready) + "\n")
READY_OUT.flush()
log(
    f"ready: {issuer} in {time.monotonic() - started:.2f}s after setup (access ttl {ACCESS_TTL}s, "
    f"refresh ttl {REFRESH_TTL or 'none'}, grace period {GRACE_PERIOD}s, rotate {ROTATE}, "
    f"reuse protection {REUSE_PROTECTION}, stdin watch {watch_stdin})"
)
try:
    server.serve_forever(poll_interval=0.2)
finally:
    server.server_close()
    if own_data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    # Daemon threads may still hold a request: do not wait for them.
    os._exit(0)
