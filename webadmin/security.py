"""HTTP Basic auth, security headers and CSRF tokens for the admin."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.settings import Settings

OPEN_PATHS = frozenset({"/healthz"})
# Without a password only loopback names may address the admin, so that a web page cannot
# reach it through DNS rebinding. Probes and scrapers may use any name.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})
ANY_HOST_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
CSRF_COOKIE = "srjobs_csrf"
CSRF_FIELD = "csrf_token"
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def check_basic(header: str | None, user: str, password: str) -> str | None:
    """The user name when `header` carries the right credentials; None otherwise.

    Both parts are compared in constant time, whatever matched before.
    """
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    given_user, sep, given_password = decoded.partition(":")
    if not sep:
        return None
    user_ok = hmac.compare_digest(given_user.encode(), user.encode())
    password_ok = hmac.compare_digest(given_password.encode(), password.encode())
    return given_user if user_ok and password_ok else None


class SecurityMiddleware:
    """Adds the security headers to every response; requires Basic auth when configured."""

    def __init__(self, app: ASGIApp, settings: Settings, loopback_only: bool = True) -> None:
        self.app = app
        self.settings = settings
        # Only while bound to loopback: an operator who binds another address without a
        # password chose to expose the admin (the log and the banner say so).
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        password = self.settings.admin_password
        if password is None and self.loopback_only and scope["path"] not in ANY_HOST_PATHS:
            if not loopback_host(Headers(scope=scope).get("host", "")):
                await _plain(send_with_headers, 403, MISDIRECTED)
                return
        if password is not None and scope["path"] not in OPEN_PATHS:
            header = Headers(scope=scope).get("authorization")
            user = check_basic(header, self.settings.admin_user, password)
            if user is None:
                await _unauthorized(send_with_headers)
                return
            scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send_with_headers)


MISDIRECTED = (
    b'{"error": "without ADMIN_PASSWORD the admin answers only to localhost or 127.0.0.1:'
    b' set ADMIN_PASSWORD to reach it by another name"}'
)


def loopback_host(host: str) -> bool:
    """True when a Host header names this machine's loopback interface (any port)."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[: host.find("]") + 1]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in LOOPBACK_HOSTS


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _unauthorized(send: Send) -> None:
    body = b'{"error": "authentication required"}'
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Basic realm="srjobs", charset="UTF-8"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def who(request: Request) -> str:
    """The audit log's actor: the Basic user, else the client's address."""
    user = request.scope.get("state", {}).get("user")
    if user:
        return str(user)
    client = request.client
    return f"anonymous@{client.host}" if client else "anonymous"


class Csrf:
    """Signed double-submit tokens: the cookie and the form field carry the same signed value."""

    def __init__(self, secret: str | None) -> None:
        self.key = hashlib.sha256(secret.encode()).digest() if secret else secrets.token_bytes(32)

    def _sign(self, nonce: str) -> str:
        return hmac.new(self.key, nonce.encode(), hashlib.sha256).hexdigest()

    def new_token(self) -> str:
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}"

    def valid(self, token: str | None) -> bool:
        """True when the token was signed by this key."""
        if not token or len(token) > 200:
            return False
        nonce, _, signature = token.partition(".")
        return hmac.compare_digest(signature.encode(), self._sign(nonce).encode())

    def token_for(self, request: Request) -> tuple[str, bool]:
        """The request's token and whether it is new (so the cookie must be set)."""
        current = request.cookies.get(CSRF_COOKIE)
        if self.valid(current):
            assert current is not None
            return current, False
        return self.new_token(), True

    def check(self, request: Request, submitted: str | None) -> bool:
        """A form is genuine when its token matches the cookie and carries our signature."""
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not submitted or not self.valid(cookie):
            return False
        return hmac.compare_digest(cookie.encode(), submitted.encode())
