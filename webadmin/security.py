"""Security headers, the loopback-name check, HTTP Basic and CSRF tokens for the admin."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from webadmin.asgi import HttpMiddleware

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


class SecurityMiddleware(HttpMiddleware):
    """Adds the security headers to every response; answers only loopback names when asked."""

    def __init__(self, app: ASGIApp, check_host: bool = True) -> None:
        super().__init__(app)
        # Only while the admin is open (no credentials) and bound to loopback: an operator who
        # binds another address without a password chose to expose it (the log and the banner
        # say so).
        self.check_host = check_host

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        if self.check_host and scope["path"] not in ANY_HOST_PATHS:
            if not loopback_host(Headers(scope=scope).get("host", "")):
                await send_json(send_with_headers, 403, {"error": MISDIRECTED})
                return
        await self.app(scope, receive, send_with_headers)


MISDIRECTED = (
    "without ADMIN_PASSWORD the admin answers only to localhost or 127.0.0.1:"
    " set ADMIN_PASSWORD to reach it by another name"
)


def loopback_host(host: str) -> bool:
    """True when a Host header names this machine's loopback interface (any port)."""
    host = host.strip().lower()
    if host.startswith("["):
        name = host[: host.find("]") + 1]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name in LOOPBACK_HOSTS


async def send_json(
    send: Send, status: int, payload: dict, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer from a middleware with a small JSON body."""
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def who(request: Request) -> str:
    """The audit log's actor: the signed-in user (Basic or sign-on proxy), else the client's
    address."""
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
